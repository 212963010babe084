// Upload page: drag and drop files or a folder, per-file metadata, checks before sending, one request per
// file with its progress, then the document's live processing state (app.js refreshStatuses).
"use strict";
(() => {
  const form = document.getElementById("upload");
  if (!form) return;
  const pattern = new RegExp("^" + form.dataset.pattern + "$");
  const maxBytes = Number(form.dataset.maxMb) * 1024 * 1024;
  const tbody = document.querySelector("#list tbody");
  const types = /\.(pdf|tiff?|jpe?g|png)$/i;
  const skip = /(^|\/)(thumbs\.db|desktop\.ini|\.ds_store)$|\.(txt|md|csv|ini)$/i;
  let rows = [];
  const $ = (id) => document.getElementById(id);

  function add(files) {
    for (const f of files) {
      const name = f.webkitRelativePath || f.name;
      if (skip.test(name)) continue;
      const i = rows.length;
      const tr = document.createElement("tr");
      tr.innerHTML = `<td class="fname"></td>
        <td><label class="visually-hidden" for="code-${i}">Mã hồ sơ của tệp ${i + 1}</label><input type="text" id="code-${i}" class="code"></td>
        <td><label class="visually-hidden" for="kind-${i}">Loại của tệp ${i + 1}</label><select id="kind-${i}" class="kind"><option value="input">thành phần hồ sơ</option><option value="output">kết quả</option></select></td>
        <td><label class="visually-hidden" for="comp-${i}">Thành phần của tệp ${i + 1}</label><input type="text" id="comp-${i}" class="comp"></td>
        <td><progress max="100" value="0" aria-label="tiến độ tải lên tệp ${i + 1}"></progress></td>
        <td><span class="status badge">chưa gửi</span> <span class="err"></span></td>`;
      tr.querySelector(".fname").textContent = `${name} (${(f.size / 1048576).toFixed(1).replace(".", ",")} MB)`;
      tr.querySelector(".code").value = $("b-code").value.trim();
      tr.querySelector(".kind").value = $("b-kind").value;
      tr.querySelector(".comp").value = $("b-comp").value.trim();
      tbody.appendChild(tr);
      rows.push({file: f, name, tr, sent: false});
    }
    $("list").hidden = rows.length === 0;
    $("send").disabled = rows.length === 0;
    $("clear").hidden = rows.length === 0;
    $("summary").textContent = `${rows.length} tệp`;
  }

  // batch fields fill the rows not edited yet
  for (const [id, cls] of [["b-code", "code"], ["b-kind", "kind"], ["b-comp", "comp"]]) {
    $(id).addEventListener("change", () => rows.filter(r => !r.sent).forEach(r => { r.tr.querySelector("." + cls).value = $(id).value.trim(); }));
  }
  $("files").addEventListener("change", (e) => add(e.target.files));
  $("folder").addEventListener("change", (e) => add(e.target.files));
  $("clear").addEventListener("click", () => { rows = []; tbody.innerHTML = ""; add([]); });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", async (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const files = [];
    const walk = async (entry, path) => {
      if (entry.isFile) {
        await new Promise((ok) => entry.file((f) => { Object.defineProperty(f, "webkitRelativePath", {value: path + f.name}); files.push(f); ok(); }, ok));
      } else if (entry.isDirectory) {
        const reader = entry.createReader();
        let batch;
        do {
          batch = await new Promise((ok) => reader.readEntries(ok, () => ok([])));
          for (const child of batch) await walk(child, path + entry.name + "/");
        } while (batch.length);
      }
    };
    const items = [...(e.dataTransfer.items || [])].map(i => i.webkitGetAsEntry && i.webkitGetAsEntry()).filter(Boolean);
    if (items.length) { for (const it of items) await walk(it, ""); } else files.push(...e.dataTransfer.files);
    add(files);
  });

  function check(r) {
    const code = r.tr.querySelector(".code").value.trim();
    if (!code) return "thiếu mã hồ sơ";
    if (!pattern.test(code)) return `mã hồ sơ "${code}" không đúng dạng (ví dụ 000.00.06.H56-260715-0361)`;
    if (!types.test(r.name)) return "chỉ nhận PDF, TIFF, JPEG, PNG";
    if (r.file.size === 0) return "tệp rỗng";
    if (r.file.size > maxBytes) return `tệp lớn hơn ${form.dataset.maxMb} MB`;
    return "";
  }

  function send(r) {
    return new Promise((done) => {
      const fd = new FormData();
      fd.append("files", r.file, r.name.split("/").pop());
      fd.append("dossier_code", r.tr.querySelector(".code").value.trim());
      fd.append("kind", r.tr.querySelector(".kind").value);
      fd.append("component", r.tr.querySelector(".comp").value.trim());
      fd.append("unit", $("b-unit").value.trim());
      const xhr = new XMLHttpRequest();
      const bar = r.tr.querySelector("progress");
      const status = r.tr.querySelector(".status");
      const err = r.tr.querySelector(".err");
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = Math.round(100 * e.loaded / e.total); };
      xhr.onload = () => {
        let body = null;
        try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
        if (xhr.status === 202 && body) {
          const doc = body.documents[0];
          r.sent = true;
          bar.value = 100;
          status.dataset.docId = doc.id;
          status.dataset.status = doc.status;
          status.textContent = doc.duplicate ? "đã có (trùng tệp)" : "chờ xử lý";
          const link = document.createElement("a");
          link.href = `/doc/${doc.id}`;
          link.textContent = "xem";
          err.replaceChildren(link);
          if (doc.warnings && doc.warnings.length) err.append(" · " + doc.warnings.join("; "));
        } else {
          const per = body && body.detail && body.detail.errors ? body.detail.errors.map(x => x.message).join("; ") : "";
          status.textContent = "bị từ chối";
          status.className = "status badge bad";
          err.textContent = per || sohoa.message(body, `lỗi ${xhr.status}`);
        }
        done();
      };
      xhr.onerror = () => { status.textContent = "lỗi mạng"; status.className = "status badge bad"; done(); };
      xhr.open("POST", "/documents");
      xhr.setRequestHeader("X-CSRF-Token", sohoa.csrf());
      xhr.send(fd);
    });
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const todo = rows.filter(r => !r.sent);
    let bad = 0;
    for (const r of todo) {
      const msg = check(r);
      r.tr.querySelector(".err").textContent = msg;
      if (msg) { bad++; r.tr.querySelector(".status").className = "status badge bad"; r.tr.querySelector(".status").textContent = "cần sửa"; }
    }
    if (bad) { $("summary").textContent = `${bad} tệp cần sửa trước khi gửi`; return; }
    $("send").disabled = true;
    for (const r of todo) await send(r);
    $("summary").textContent = `đã gửi ${rows.filter(r => r.sent).length}/${rows.length} tệp; trạng thái cập nhật tự động`;
    $("send").disabled = false;
    refreshStatuses();
  });
})();
