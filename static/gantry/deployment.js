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
  const cancelForm = document.getElementById("cancel-form");
  const destroyForm = document.getElementById("destroy-form");
  const TERMINAL = ["succeeded", "failed", "rolled_back", "cancelled", "destroyed", "destroy_failed"];
  const CANCELLABLE = ["queued", "deploying"];
  const DESTROYABLE = ["succeeded", "failed", "destroy_failed"];
  let lastSeq = parseInt(root.dataset.lastSeq || "0", 10);
  let diagramTimer = null;
  const fetchSeq = {};
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
    progressText.textContent = done + " of " + total + " resources " + (deleting ? "deleted" : "ready") + " · " + pct + "%";
  }

  // The actions follow the status in place: the page never reloads itself, so a reader keeps
  // their place and the stream its position.
  function updateActions() {
    if (cancelForm) cancelForm.hidden = CANCELLABLE.indexOf(status) < 0;
    if (destroyForm) destroyForm.hidden = DESTROYABLE.indexOf(status) < 0;
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

  // Elapsed times come from the resource records: an event's own time is when a pass wrote it
  // down, the same instant for a resource created and ready within one pass.
  function refreshTimes() {
    latestOnly(root.dataset.statusUrl, function (r) { return r.json(); }, function (data) {
      data.resources.forEach(function (r) {
        const tr = document.querySelector('#resources tr[data-logical-id="' + CSS.escape(r.logical_id) + '"]');
        if (!tr) return;
        const deleting = r.state === "deleting" || r.state === "deleted";
        tr.dataset.started = (deleting ? r.delete_started_at : r.started_at) || "";
        tr.dataset.ready = (deleting ? r.deleted_at : r.ready_at) || "";
      });
      tick();
    });
  }

  // Two fetches can be in flight (events kept coming) and the server may answer the newer one
  // first: only the answer to the latest request is drawn, never an older picture over it.
  function latestOnly(url, read, use) {
    const mine = fetchSeq[url] = (fetchSeq[url] || 0) + 1;
    fetch(url, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? read(r) : null; })
      .then(function (body) { if (body && mine === fetchSeq[url]) use(body); });
  }

  function refreshDiagram() {
    clearTimeout(diagramTimer);
    diagramTimer = setTimeout(function () {
      latestOnly(root.dataset.diagramUrl, function (r) { return r.text(); },
        function (svg) { diagram.innerHTML = svg; });
      refreshTimes();
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
    // The log follows the newest event unless the reader has scrolled up to read older ones.
    const atEnd = eventsEl.scrollTop + eventsEl.clientHeight >= eventsEl.scrollHeight - 4;
    eventsEl.append(li);
    if (atEnd) eventsEl.scrollTop = eventsEl.scrollHeight;
    if (e.kind === "status") {
      status = e.state;
      statusEl.textContent = e.state.replace(/_/g, " ");
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
    updateActions();
    if (TERMINAL.indexOf(status) >= 0 && source) {
      source.close();
      streamState.textContent = "finished";
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
  eventsEl.scrollTop = eventsEl.scrollHeight;
  updateProgress();
  updateActions();
  tick();
  setInterval(tick, 500);
})();
