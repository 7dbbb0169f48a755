// The deployment page, live: events arrive over Server-Sent Events; a reconnect resumes from the
// last event number (EventSource sends Last-Event-ID), so nothing is lost or shown twice.
(function () {
  "use strict";
  const root = document.getElementById("deployment");
  if (!root) return;
  const statusEl = document.getElementById("status");
  const reasonEl = document.getElementById("reason");
  const bar = document.querySelector("#progress .bar");
  const progress = document.getElementById("progress");
  const progressText = document.getElementById("progress-text");
  const streamState = document.getElementById("stream-state");
  const eventsEl = document.getElementById("events");
  const diagram = document.getElementById("deploy-diagram");
  const TERMINAL = ["succeeded", "failed", "rolled_back", "cancelled", "destroyed", "destroy_failed"];
  let lastSeq = parseInt(root.dataset.lastSeq || "0", 10);
  let diagramTimer = null;
  let status = statusEl.className.replace(/.*status-/, "");

  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (ev) { if (!window.confirm(f.dataset.confirm)) ev.preventDefault(); });
  });

  function rows() { return document.querySelectorAll("#resources tbody tr"); }

  function updateProgress() {
    const deleting = ["rolling_back", "destroying", "rolled_back", "destroyed", "cancelled", "destroy_failed"].indexOf(status) >= 0;
    const want = deleting ? "deleted" : "ready";
    let done = 0, total = 0;
    rows().forEach(function (tr) { total++; if (tr.querySelector(".state-badge").textContent === want) done++; });
    const pct = total ? Math.round(100 * done / total) : 0;
    bar.style.width = pct + "%";
    progress.setAttribute("aria-valuenow", String(pct));
    progressText.textContent = done + " of " + total + " resources " + (deleting ? "deleted" : "ready");
  }

  function tick() {
    const now = Date.now();
    rows().forEach(function (tr) {
      const start = tr.dataset.started ? Date.parse(tr.dataset.started) : null;
      const end = tr.dataset.ready ? Date.parse(tr.dataset.ready) : null;
      if (!start) return;
      const secs = ((end || now) - start) / 1000;
      tr.querySelector(".elapsed").textContent = secs.toFixed(secs < 10 ? 1 : 0) + " s";
    });
  }

  function refreshDiagram() {
    clearTimeout(diagramTimer);
    diagramTimer = setTimeout(function () {
      fetch(root.dataset.diagramUrl, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (svg) { if (svg) diagram.innerHTML = svg; });
    }, 400);
  }

  function apply(e) {
    if (e.seq <= lastSeq) return;
    lastSeq = e.seq;
    const li = document.createElement("li");
    li.dataset.seq = String(e.seq);
    const t = document.createElement("time");
    t.dateTime = e.at;
    t.textContent = e.at.substring(11, 19);  // HH:MM:SS UTC, as the server renders it
    li.append(t, " " + e.message);
    eventsEl.append(li);
    if (e.kind === "status") {
      status = e.state;
      statusEl.textContent = e.state.replace("_", " ");
      statusEl.className = "status status-" + e.state;
      reasonEl.textContent = TERMINAL.indexOf(e.state) >= 0 ? e.message : "";
    }
    if (e.logical_id) {
      const tr = document.querySelector('#resources tr[data-logical-id="' + CSS.escape(e.logical_id) + '"]');
      if (tr) {
        const badge = tr.querySelector(".state-badge");
        if (e.kind === "resource") {
          badge.textContent = e.state;
          badge.className = "state-badge state-" + e.state;
          tr.querySelector(".why").textContent = e.state === "failed" ? e.message : "";
          if (e.data && e.data.physical_id) tr.querySelector(".pid code").textContent = e.data.physical_id;
          if (e.state === "creating" || e.state === "deleting") { tr.dataset.started = e.at; tr.dataset.ready = ""; }
          if (e.state === "ready" || e.state === "deleted") tr.dataset.ready = e.at;
          refreshDiagram();
        } else if (e.kind === "waiting") {
          tr.querySelector(".why").textContent = e.message;
        }
      }
    }
    updateProgress();
    if (TERMINAL.indexOf(status) >= 0 && source) {
      source.close();
      streamState.textContent = "finished";
      document.querySelectorAll("#cancel-button").forEach(function (b) { b.disabled = true; });
      if (e.kind === "status") setTimeout(function () { window.location.reload(); }, 1500);
    }
  }

  let source = null;
  if (TERMINAL.indexOf(status) < 0) {
    source = new EventSource(root.dataset.streamUrl + "?after=" + lastSeq);
    source.addEventListener("open", function () { streamState.textContent = "live"; });
    source.addEventListener("error", function () { streamState.textContent = "reconnecting…"; });
    source.addEventListener("deployment", function (msg) { apply(JSON.parse(msg.data)); });
  } else {
    streamState.textContent = "finished";
  }
  updateProgress();
  tick();
  setInterval(tick, 500);
})();
