// The deployment page, live: events arrive over Server-Sent Events; a reconnect resumes from the
// last event number (EventSource sends Last-Event-ID), so nothing is lost or shown twice.
//
// A badge is decided by the same rules as on the server (pages/states.py, sent in
// #state-vocabulary): the record's state and the deployment's phase. Each event changes the
// badge at once; the page then asks the server (status.json, at most about once a second) for
// what an event does not carry: the records' own times, why a resource waits and when it is
// looked at again (the live countdown), and the diagram coloured by the badges.
(function () {
  "use strict";
  const root = document.getElementById("deployment");
  if (!root) return;
  const vocab = JSON.parse(document.getElementById("state-vocabulary").textContent);
  const human = window.GantryHuman;
  const statusEl = document.getElementById("status");
  const reasonEl = document.getElementById("reason");
  const bar = document.querySelector("#progress .bar");
  const progress = document.getElementById("progress");
  const progressText = document.getElementById("progress-text");
  const streamState = document.getElementById("stream-state");
  const eventsEl = document.getElementById("events");
  const cancelForm = document.getElementById("cancel-form");
  const destroyForm = document.getElementById("destroy-form");
  const diagramView = document.querySelector("#deploy-diagram-view [data-diagram]");
  const diagram = diagramView && window.GantryDiagram ? window.GantryDiagram.attach(diagramView, "deployment") : null;
  const REFRESH_MS = 800;
  let lastSeq = parseInt(root.dataset.lastSeq || "0", 10);
  let status = statusEl.dataset.status;
  // Server time minus this browser's: countdowns are counted on the server's clock.
  let skew = Date.parse(root.dataset.serverNow) - Date.now() || 0;
  const fetchSeq = {};
  let refreshTimer = null, refreshWanted = false, lastRefresh = 0;
  let drawnStates = "";

  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (ev) { if (!window.confirm(f.dataset.confirm)) ev.preventDefault(); });
  });

  function rows() { return document.querySelectorAll("#resources tbody tr"); }
  function row(id) { return document.querySelector('#resources tr[data-logical-id="' + CSS.escape(id) + '"]'); }
  function phase() { return vocab.phases[status] || "build"; }

  function displayOf(state, deleteStarted, drift) {
    const rules = vocab.rules[phase()] || {};
    const key = deleteStarted && rules[state + "+delete"] ? state + "+delete" : state;
    const shown = rules[key] || state;
    // A ready resource the last drift check found changed or deleted outside Gantry.
    return shown === "ready" && vocab.drifted.indexOf(drift || "") >= 0 ? "drifted" : shown;
  }

  function badge(tr) {
    const shown = displayOf(tr.dataset.state, tr.dataset.deleteStarted === "1", tr.dataset.drift);
    const el = tr.querySelector(".state-badge");
    if (el.dataset.state !== shown) {
      el.dataset.state = shown;
      el.className = "state-badge state-" + shown;
      el.textContent = vocab.labels[shown] || shown.replace(/_/g, " ");
    }
  }

  function updateProgress() {
    const want = vocab.done[status] || "ready";
    let done = 0, total = 0;
    rows().forEach(function (tr) { total++; if (tr.dataset.state === want) done++; });
    const pct = total ? Math.round(100 * done / total) : 0;
    bar.style.width = pct + "%";
    progress.setAttribute("aria-valuenow", String(pct));
    progressText.textContent = done + " of " + total + " resources " + want + " · " + pct + "%";
  }

  // The actions follow the status in place: the page never reloads itself, so a reader keeps
  // their place and the stream its position.
  function updateActions() {
    if (cancelForm) cancelForm.hidden = vocab.cancellable.indexOf(status) < 0;
    if (destroyForm) destroyForm.hidden = vocab.destroyable.indexOf(status) < 0;
  }

  function setStatus(value, message) {
    status = value;
    statusEl.dataset.status = value;
    statusEl.textContent = vocab.statuses[value] || value;
    statusEl.className = "status status-" + value;
    reasonEl.textContent = vocab.terminal.indexOf(value) >= 0 ? message : "";
    rows().forEach(badge);
  }

  // Elapsed time (ticking while a resource is worked on) and the countdown to the next look.
  function tick() {
    const now = Date.now();
    rows().forEach(function (tr) {
      const start = tr.dataset.started ? Date.parse(tr.dataset.started) : null;
      const end = tr.dataset.ended ? Date.parse(tr.dataset.ended) : null;
      const cell = tr.querySelector(".elapsed");
      if (start) {
        const text = human.duration(((end || now + skew) - start) / 1000);
        if (cell.textContent !== text) cell.textContent = text;
      }
      const countdown = tr.querySelector(".countdown");
      const next = tr.dataset.nextCheck ? Date.parse(tr.dataset.nextCheck) : null;
      const left = next ? (next - (now + skew)) / 1000 : 0;
      const text = left >= 1 ? " · next check in " + human.duration(Math.ceil(left)) : "";
      if (countdown.textContent !== text) countdown.textContent = text;
    });
  }

  // Two fetches can be in flight (events kept coming) and the server may answer the newer one
  // first: only the answer to the latest request is used, never an older one over it.
  function latestOnly(url, read, use) {
    const mine = fetchSeq[url] = (fetchSeq[url] || 0) + 1;
    fetch(url, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? read(r) : null; })
      .then(function (body) { if (body && mine === fetchSeq[url]) use(body); });
  }

  function applyStatus(data) {
    skew = Date.parse(data.now) - Date.now() || skew;
    // An answer read before the last event this page applied may hold older states: keep the
    // badges the events set, and ask again.
    const current = data.last_event_seq >= lastSeq;
    data.resources.forEach(function (r) {
      const tr = row(r.logical_id);
      if (!tr) return;
      if (current) {
        tr.dataset.state = r.state;
        tr.dataset.deleteStarted = r.delete_started_at ? "1" : "";
        tr.dataset.drift = r.drift || "";
        badge(tr);
        if (r.physical_id) tr.querySelector(".pid code").textContent = r.physical_id;
      }
      tr.dataset.started = r.started || "";
      tr.dataset.ended = r.ended || "";
      tr.dataset.nextCheck = r.next_check_at || "";
      tr.querySelector(".reason").textContent = r.reason || "";
    });
    if (current && data.run) showRun(data.run);
    if (!current) scheduleRefresh();
    updateProgress();
    tick();
    redrawDiagram();
  }

  // The run in progress, in the runs table: its status and reason as the server has them.
  function showRun(run) {
    const tr = document.querySelector('#runs tr[data-run="' + run.number + '"]');
    if (!tr || tr.dataset.runStatus === run.status) return;
    tr.dataset.runStatus = run.status;
    const badge = tr.querySelector(".status");
    badge.className = "status status-" + run.status;
    badge.textContent = vocab.run_statuses[run.status] || run.status;
    tr.querySelector(".run-reason").textContent = run.reason || "";
  }

  // At most one status request per REFRESH_MS while events keep coming, and always one after
  // the last of them (a debounce alone would wait until the events stop).
  function scheduleRefresh() {
    refreshWanted = true;
    if (refreshTimer) return;
    const wait = Math.max(0, lastRefresh + REFRESH_MS - Date.now());
    refreshTimer = setTimeout(function () {
      refreshTimer = null;
      if (!refreshWanted) return;
      refreshWanted = false;
      lastRefresh = Date.now();
      latestOnly(root.dataset.statusUrl, function (r) { return r.json(); }, applyStatus);
    }, wait);
  }

  // The diagram follows the badges: redrawn when the set of badges shown changed.
  function redrawDiagram() {
    if (!diagram) return;
    const now = Array.from(rows()).map(function (tr) {
      return tr.dataset.logicalId + "=" + tr.querySelector(".state-badge").dataset.state;
    }).join(",");
    if (now === drawnStates) return;
    drawnStates = now;
    latestOnly(root.dataset.diagramUrl, function (r) { return r.text(); },
      function (svg) { diagram.replace(svg); });
  }

  function logEvent(e) {
    const li = document.createElement("li");
    li.dataset.seq = String(e.seq);
    const t = document.createElement("time");
    human.showTime(t, e.at, "time");
    li.append(t, " " + e.message);
    // The log follows the newest event unless the reader has scrolled up to read older ones.
    const atEnd = eventsEl.scrollTop + eventsEl.clientHeight >= eventsEl.scrollHeight - 4;
    eventsEl.append(li);
    if (atEnd) eventsEl.scrollTop = eventsEl.scrollHeight;
  }

  function apply(e) {
    if (e.seq <= lastSeq) return;
    lastSeq = e.seq;
    logEvent(e);
    if (e.kind === "status") setStatus(e.state, e.message);
    const tr = e.logical_id ? row(e.logical_id) : null;
    if (tr && e.kind === "resource") {
      // A failure while the resources are being deleted is a failure to delete.
      if (e.state === "deleting" || (e.state === "failed" && phase() === "teardown")) tr.dataset.deleteStarted = "1";
      tr.dataset.state = e.state;
      badge(tr);
      tr.querySelector(".reason").textContent = e.state === "failed" ? e.message : "";
      tr.dataset.nextCheck = "";
      if (e.data && e.data.physical_id) tr.querySelector(".pid code").textContent = e.data.physical_id;
      if (e.state === "creating" || e.state === "deleting") { tr.dataset.started = e.at; tr.dataset.ended = ""; }
      if (e.state === "ready" || e.state === "deleted") tr.dataset.ended = tr.dataset.ended || e.at;
    } else if (tr && e.kind === "waiting") {
      tr.querySelector(".reason").textContent = e.message;
    }
    scheduleRefresh();
    updateProgress();
    updateActions();
    if (vocab.terminal.indexOf(status) >= 0 && source) {
      source.close();
      streamState.textContent = "finished";
    }
  }

  let source = null;
  if (vocab.terminal.indexOf(status) < 0) {
    source = new EventSource(root.dataset.streamUrl + "?after=" + lastSeq);
    source.addEventListener("open", function () { streamState.textContent = "live"; });
    source.addEventListener("error", function () { streamState.textContent = "reconnecting…"; });
    source.addEventListener("deployment", function (msg) { apply(JSON.parse(msg.data)); });
  } else {
    streamState.textContent = "finished";
  }
  drawnStates = Array.from(rows()).map(function (tr) {
    return tr.dataset.logicalId + "=" + tr.querySelector(".state-badge").dataset.state;
  }).join(",");
  eventsEl.scrollTop = eventsEl.scrollHeight;
  updateProgress();
  updateActions();
  tick();
  setInterval(tick, 500);
})();
