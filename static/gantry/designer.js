// The design page: live preview, inline errors and per-AZ rows, without a page reload.
// The server does all validation and drawing (one validator, one plan); this script only
// posts the form, debounced, and places what comes back.
(function () {
  "use strict";
  const form = document.getElementById("design-form");
  if (!form) return;
  const previewUrl = form.dataset.previewUrl;
  const preview = document.getElementById("preview");
  const statusEl = document.getElementById("preview-status");
  const summary = document.getElementById("error-summary");
  const warningsBox = document.getElementById("warnings");
  const warningList = document.getElementById("warning-list");
  const saveButton = document.getElementById("save-button");
  const regionAzs = JSON.parse(document.getElementById("region-azs").textContent);
  const DEBOUNCE_MS = 250;
  let timer = null;
  let inflight = null;
  let seq = 0;
  let submitting = false;
  // Errors only a save finds (another design of the team has this name...) are not in the
  // preview's answer: keep those of a refused save until the user changes something.
  let saveErrors = JSON.parse(document.getElementById("save-errors").textContent);
  // The form holds edits that no save has kept: after a refused save, from the start.
  let dirty = saveErrors.length > 0;

  function azName(region, index) {
    const letters = regionAzs[region] || "";
    return index < letters.length ? region + letters[index] : "(no AZ " + (index + 1) + " in " + region + ")";
  }

  function relabelRows() {
    const region = (form.elements.region || {}).value || "us-east-1";
    form.querySelectorAll("fieldset[data-list]").forEach(function (fs) {
      const list = fs.dataset.list;
      fs.querySelectorAll("li.row").forEach(function (li, i) {
        const inputs = li.querySelectorAll("input");
        const az = li.querySelector(".az");
        if (az) az.textContent = azName(region, i);
        if (list === "tags") {
          const labels = li.querySelectorAll("label");
          inputs[0].id = "id_tag_key_" + i; labels[0].htmlFor = inputs[0].id;
          inputs[1].id = "id_tag_value_" + i; labels[1].htmlFor = inputs[1].id;
          const tagErr = li.querySelector(".field-error");
          tagErr.id = "err-tags-" + i;
          inputs[0].setAttribute("aria-describedby", tagErr.id);
          inputs[1].setAttribute("aria-describedby", tagErr.id);
          li.querySelector("[data-remove-row]").setAttribute("aria-label", "Remove tag " + (i + 1));
          return;
        }
        const input = inputs[0];
        input.name = list;
        input.id = "id_" + list + "_" + i;
        li.querySelector("label").htmlFor = input.id;
        const err = li.querySelector(".field-error");
        err.dataset.errorFor = list;
        err.dataset.index = String(i);
        err.id = "err-" + list + "-" + i;
        input.setAttribute("aria-describedby", "help-" + list + " " + err.id);
        const kind = fs.querySelector("legend").textContent.split(" ")[0];
        const kindEl = li.querySelector(".kind");
        if (kindEl) kindEl.textContent = kind;
        li.querySelector("[data-remove-row]").setAttribute("aria-label", "Remove " + kind.toLowerCase() + " subnet " + (i + 1));
      });
    });
  }

  function clearErrors() {
    form.querySelectorAll(".field-error").forEach(function (el) { el.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
  }

  function placeError(issue) {
    let sel = '.field-error[data-error-for="' + CSS.escape(issue.field) + '"]';
    let target = null;
    if (issue.index !== undefined && issue.index !== null) {
      target = form.querySelector(sel + '[data-index="' + issue.index + '"]');
    }
    if (issue.field === "tags" && issue.key !== undefined && issue.key !== null) {
      // A tag problem goes beside the row that has that key (the form trims what was typed).
      const row = Array.from(form.querySelectorAll('fieldset[data-list="tags"] li.row')).find(
        function (li) { return li.querySelector('input[name="tag_key"]').value.trim() === issue.key; });
      if (row) target = row.querySelector(".field-error");
    }
    if (!target) target = form.querySelector(sel + ":not([data-index])");
    if (!target) target = form.querySelector('.field-error[data-error-for="spec"]');
    show(target, issue.message);
    // An error that follows from a choice too (NAT per AZ, an ALB) is also shown beside that
    // choice, where the user has just made it; it still counts once.
    (issue.also || []).forEach(function (field) {
      const beside = form.querySelector('.field-error[data-error-for="' + CSS.escape(field) + '"]:not([data-index])');
      if (beside) show(beside, issue.message);
    });
  }

  function show(target, message) {
    target.textContent = (target.textContent ? target.textContent + " " : "") + message;
    const input = target.id ? form.querySelector('[aria-describedby~="' + target.id + '"]') : null;
    if (input) input.setAttribute("aria-invalid", "true");
  }

  function placeNotes(notes) {
    form.querySelectorAll(".field-note").forEach(function (el) { el.textContent = ""; });
    notes.forEach(function (note) {
      const el = form.querySelector('.field-note[data-note-for="' + CSS.escape(note.field) + '"]');
      if (el) el.textContent = note.message;
    });
  }

  function setValidity(errorCount) {
    const invalid = errorCount > 0;
    saveButton.disabled = invalid || submitting;
    form.querySelectorAll("[data-needs-valid]").forEach(function (b) { b.disabled = invalid; });
    document.querySelectorAll("[data-deploy]").forEach(function (b) { b.disabled = invalid; });
    summary.hidden = !invalid;
    summary.textContent = invalid ? "Fix " + errorCount + " problem" + (errorCount === 1 ? "" : "s") + " to save this design." : "";
    preview.classList.toggle("stale", invalid);
  }

  function showWarnings(warnings) {
    warningList.replaceChildren();
    warnings.forEach(function (w) {
      const li = document.createElement("li");
      li.dataset.field = w.field;
      const label = document.createElement("strong");
      label.textContent = w.label + ":";
      li.append(label, " " + w.message);
      warningList.append(li);
    });
    warningsBox.hidden = warnings.length === 0;
  }

  // The diagram zooms and pans (diagram.js); a view the reader chose survives each redraw.
  function attachDiagram() {
    const view = preview.querySelector("[data-diagram]");
    if (view && window.GantryDiagram) window.GantryDiagram.attach(view, "design");
  }

  function apply(data) {
    const known = new Set(data.errors.map(function (e) { return e.field + "\n" + e.message; }));
    const errors = data.errors.concat(saveErrors.filter(function (e) {
      return !known.has(e.field + "\n" + e.message);
    }));
    clearErrors();
    errors.forEach(placeError);
    (data.assumption_errors || []).forEach(placeError);
    placeNotes(data.assumption_notes || []);
    setValidity(errors.length);
    showWarnings(data.warnings);
    if (data.html) {
      preview.innerHTML = data.html;
      attachDiagram();
    }
    statusEl.textContent = data.valid
      ? "Preview up to date."
      : "The preview shows the last valid design; fix the highlighted fields to update it.";
  }

  function refresh() {
    if (inflight) inflight.abort();
    inflight = new AbortController();
    const mine = ++seq;
    preview.setAttribute("aria-busy", "true");
    statusEl.textContent = "Updating preview…";
    fetch(previewUrl, {
      method: "POST",
      // URL-encoded rather than multipart: the same fields, cheaper for the server to parse.
      body: new URLSearchParams(new FormData(form)),
      headers: { "X-CSRFToken": form.elements.csrfmiddlewaretoken.value, "Accept": "application/json" },
      credentials: "same-origin",
      signal: inflight.signal,
    }).then(function (resp) {
      if (!resp.ok) throw new Error("The preview service answered " + resp.status + ".");
      return resp.json();
    }).then(function (data) {
      if (mine === seq) apply(data);
    }).catch(function (err) {
      if (err.name !== "AbortError") statusEl.textContent = "Could not update the preview: " + err.message + " Your input is kept.";
    }).finally(function () {
      if (mine === seq) preview.setAttribute("aria-busy", "false");
    });
  }

  function schedule(ev) {
    // Cost assumptions are not part of the design: changing them leaves nothing unsaved.
    if (!(ev && ev.target && ev.target.closest && ev.target.closest(".assumptions"))) dirty = true;
    saveErrors = [];
    submitting = false; // an edit after a stopped or refused save can be saved again
    clearTimeout(timer);
    timer = setTimeout(refresh, DEBOUNCE_MS);
  }

  form.addEventListener("input", schedule);
  form.addEventListener("change", function (ev) {
    if (ev.target.name === "region") relabelRows();
    schedule(ev);
  });

  form.addEventListener("click", function (ev) {
    const add = ev.target.closest("[data-add-row]");
    if (add) {
      const list = add.dataset.addRow;
      const fs = add.closest("fieldset");
      const tpl = document.getElementById(list === "tags" ? "row-template-tags" : "row-template-subnet");
      const li = tpl.content.firstElementChild.cloneNode(true);
      fs.querySelector("ol").append(li);
      relabelRows();
      li.querySelector("input").focus();
      schedule();
      return;
    }
    const remove = ev.target.closest("[data-remove-row]");
    if (remove) {
      const fs = remove.closest("fieldset");
      remove.closest("li").remove();
      relabelRows();
      fs.querySelector("[data-add-row]").focus();
      schedule();
    }
  });

  // One save per click: a double click would post the form twice, and the page would show the
  // second answer ("this name already exists") for a design the first one saved.
  form.addEventListener("submit", function (ev) {
    if (ev.submitter && ev.submitter.hasAttribute("formaction")) return; // a download
    if (submitting) {
      ev.preventDefault();
      return;
    }
    submitting = true;
    saveButton.disabled = true;
  });
  // Leaving (or reloading) with unsaved edits asks first, as an editor should.
  window.addEventListener("beforeunload", function (ev) {
    if (!dirty || submitting) return;
    ev.preventDefault();
    ev.returnValue = "";
  });
  window.addEventListener("pageshow", function (ev) {
    if (!ev.persisted) return; // back to this page from the browser's cache: it can save again
    submitting = false;
    refresh();
  });

  relabelRows();
  attachDiagram();
  // Errors rendered by the server (a failed save) keep their aria-invalid; a fresh page
  // still asks once so that warnings and the preview reflect exactly what is in the form.
  refresh();
})();
