// Numbers, durations and times as a person reads them: the page-side twin of gantry/human.py
// (a browser test checks that both say the same). Every <time data-local> is shown in the
// viewer's own time zone; its title keeps the UTC time the server wrote.
(function () {
  "use strict";

  function duration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return "";
    seconds = Math.max(0, seconds);
    if (seconds < 10) return (Math.floor(seconds * 10) / 10).toFixed(1) + " s";
    const whole = Math.floor(seconds);
    if (whole < 60) return whole + " s";
    const minutes = Math.floor(whole / 60), secs = whole % 60;
    if (minutes < 60) return secs ? minutes + " min " + secs + " s" : minutes + " min";
    const hours = Math.floor(minutes / 60), rest = minutes % 60;
    return hours + " h " + String(rest).padStart(2, "0") + " min";
  }

  function pad(n) { return String(n).padStart(2, "0"); }

  // Local wall-clock text in a fixed, sortable shape (the same on every machine, unlike
  // toLocaleString): 2025-03-01 14:05, or 14:05:09 for the event log.
  function localText(date, style) {
    const day = date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate());
    const hm = pad(date.getHours()) + ":" + pad(date.getMinutes());
    const hms = hm + ":" + pad(date.getSeconds());
    if (style === "time") return hms;
    if (style === "seconds") return day + " " + hms;
    return day + " " + hm;
  }

  function utcTitle(date) {
    return date.toISOString().replace("T", " ").replace(/\.\d+Z$/, "") + " UTC";
  }

  function zoneName() {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone || "local time"; }
    catch (e) { return "local time"; }
  }

  // Fill a <time> element: local text, UTC on hover.
  function showTime(el, iso, style) {
    const date = new Date(iso);
    if (isNaN(date)) return;
    el.dateTime = date.toISOString();
    el.dataset.local = style || el.dataset.local || "datetime";
    el.textContent = localText(date, el.dataset.local);
    el.title = utcTitle(date) + " (shown in " + zoneName() + ")";
  }

  function localise(root) {
    (root || document).querySelectorAll("time[data-local]").forEach(function (el) {
      showTime(el, el.getAttribute("datetime"), el.dataset.local);
    });
    (root || document).querySelectorAll("[data-time-zone]").forEach(function (el) {
      el.textContent = zoneName();
    });
  }

  window.GantryHuman = { duration: duration, showTime: showTime, localise: localise, zoneName: zoneName };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { localise(); });
  } else {
    localise();
  }
})();
