class OcrError(RuntimeError):
    """Tesseract or its model is missing or failed."""
