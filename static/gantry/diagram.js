// Zoom and pan for a topology diagram (svg-pan-zoom, vendored in static/vendor/): the wheel
// (and a touchpad's pinch, which the browser sends as a wheel), a touch screen's pinch and
// drag, the toolbar's buttons, and the keyboard on the focused diagram.
//
// The default view is readable: one diagram unit per CSS pixel ("100 %"), where the smallest
// label is 11 px, or the whole diagram when it fits larger than that. A view the reader chose
// (zoomed, panned) is kept when the diagram is redrawn: the design page redraws it as the form
// changes, the deployment page as resources change state.
(function () {
  "use strict";
  const STEP = 1.25;          // one press of + or -
  const PAN_STEP = 60;        // pixels per arrow key (four times that with Shift)
  const MAX_REAL = 4;         // 400 %
  const DEFAULT_MAX = 1.5;    // a small diagram is not blown up past 150 % by default
  const views = {};           // the reader's chosen view, per diagram slot

  function natural(svg) {
    const vb = svg.viewBox && svg.viewBox.baseVal;
    return vb && vb.width ? { width: vb.width, height: vb.height } : null;
  }

  function attach(root, slot) {
    const frame = root.querySelector("[data-diagram-frame]");
    let svg = frame && frame.querySelector("svg");
    if (!svg || typeof window.svgPanZoom !== "function") return null;
    let size = natural(svg);
    if (!size) return null;
    const level = root.querySelector("[data-zoom-level]");
    const expandButton = root.querySelector('[data-zoom="expand"]');
    let fitReal = 1;
    let pz = null;
    let pinch = null;

    function sizeFrame() {
      if (root.classList.contains("expanded")) {
        frame.style.height = "";
        return;
      }
      const cap = Math.max(256, window.innerHeight * 0.75);
      frame.style.height = Math.round(Math.min(cap, Math.max(256, size.height + 24))) + "px";
    }

    function real() { return pz.getSizes().realZoom; }
    function centre() {
      const s = pz.getSizes();
      return { x: s.width / 2, y: s.height / 2 };
    }
    function showLevel() {
      if (level) level.textContent = Math.round(real() * 100) + " %";
    }
    function remember() {
      if (!slot) return;
      const pan = pz.getPan();
      views[slot] = { real: real(), x: pan.x, y: pan.y };
    }
    function setReal(target, point) {
      const clamped = Math.min(MAX_REAL, Math.max(Math.min(fitReal, 1) * 0.5, target));
      pz.zoomAtPointBy(clamped / real(), point || centre());
    }

    // The readable default: 100 % from the diagram's top left (its traffic flows left to
    // right), or the whole diagram when it fits at 100 % or more.
    function defaultView() {
      pz.fit();
      pz.center();
      fitReal = real();
      if (fitReal >= 1) {
        if (fitReal > DEFAULT_MAX) setReal(DEFAULT_MAX);
        pz.center();
      } else {
        setReal(1);
        const now = pz.getSizes();
        const h = size.height * now.realZoom;
        pz.pan({ x: 8, y: h <= now.height ? (now.height - h) / 2 : 8 });
      }
      if (slot) delete views[slot];
      showLevel();
    }

    function start(chosen) {
      sizeFrame();
      svg.style.width = "100%";
      svg.style.height = "100%";
      pz = window.svgPanZoom(svg, {
        zoomEnabled: true,
        panEnabled: true,
        controlIconsEnabled: false,
        dblClickZoomEnabled: true,
        mouseWheelZoomEnabled: true,
        preventMouseEventsDefault: true,
        zoomScaleSensitivity: 0.2,
        minZoom: 0.05,
        maxZoom: 50,
        fit: true,
        center: true,
        customEventsHandler: touch,
        onUpdatedCTM: function () { showLevel(); },
        onZoom: function () { remember(); },
        onPan: function () { remember(); },
      });
      fitReal = real();
      if (chosen) {
        pz.zoomBy(chosen.real / real());
        pz.pan({ x: chosen.x, y: chosen.y });
        views[slot] = chosen;
        showLevel();
      } else {
        defaultView();
      }
    }

    // A touch screen: one finger drags, two pinch (zooming at the point between them).
    const touch = {
      haltEventListeners: ["touchstart", "touchend", "touchmove", "touchleave", "touchcancel"],
      init: function (options) {
        const el = options.svgElement;
        this.listeners = {
          touchstart: function (ev) {
            pinch = track(ev);
            ev.preventDefault();
          },
          touchmove: function (ev) {
            const now = track(ev);
            if (!pinch || !now) return;
            ev.preventDefault();
            const rect = el.getBoundingClientRect();
            if (now.count === 2 && pinch.count === 2 && pinch.distance > 0) {
              setReal(real() * now.distance / pinch.distance, { x: now.x - rect.left, y: now.y - rect.top });
            }
            options.instance.panBy({ x: now.x - pinch.x, y: now.y - pinch.y });
            pinch = now;
          },
          touchend: function (ev) { pinch = track(ev); },
          touchcancel: function () { pinch = null; },
        };
        for (const name in this.listeners) el.addEventListener(name, this.listeners[name], { passive: false });
        this.el = el;
      },
      destroy: function () {
        for (const name in this.listeners) this.el.removeEventListener(name, this.listeners[name]);
      },
    };

    function track(ev) {
      const t = ev.touches;
      if (!t || !t.length) return null;
      if (t.length === 1) return { count: 1, x: t[0].clientX, y: t[0].clientY, distance: 0 };
      const dx = t[1].clientX - t[0].clientX, dy = t[1].clientY - t[0].clientY;
      return {
        count: 2,
        x: (t[0].clientX + t[1].clientX) / 2,
        y: (t[0].clientY + t[1].clientY) / 2,
        distance: Math.hypot(dx, dy),
      };
    }

    function act(what) {
      if (what === "in") setReal(real() * STEP);
      else if (what === "out") setReal(real() / STEP);
      else if (what === "actual") defaultView();
      else if (what === "fit") { pz.fit(); pz.center(); remember(); }
      else if (what === "expand") expand(!root.classList.contains("expanded"));
      showLevel();
    }

    function expand(on) {
      root.classList.toggle("expanded", on);
      document.body.classList.toggle("diagram-expanded", on);
      if (expandButton) {
        expandButton.setAttribute("aria-pressed", on ? "true" : "false");
        expandButton.textContent = on ? "Close full screen" : "Full screen";
      }
      const keep = { real: real(), pan: pz.getPan() };
      sizeFrame();
      pz.resize();
      pz.zoomBy(keep.real / real());
      pz.pan(keep.pan);
      frame.focus();
    }

    root.addEventListener("click", function (ev) {
      const button = ev.target.closest("[data-zoom]");
      if (button && root.contains(button)) act(button.dataset.zoom);
    });
    frame.addEventListener("keydown", function (ev) {
      if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
      const step = ev.shiftKey ? PAN_STEP * 4 : PAN_STEP;
      const keys = {
        "+": function () { act("in"); }, "=": function () { act("in"); },
        "-": function () { act("out"); }, "_": function () { act("out"); },
        "0": function () { act("actual"); },
        "f": function () { act("fit"); }, "F": function () { act("fit"); },
        "ArrowLeft": function () { pz.panBy({ x: step, y: 0 }); },
        "ArrowRight": function () { pz.panBy({ x: -step, y: 0 }); },
        "ArrowUp": function () { pz.panBy({ x: 0, y: step }); },
        "ArrowDown": function () { pz.panBy({ x: 0, y: -step }); },
        "Escape": function () { if (root.classList.contains("expanded")) expand(false); },
      };
      const handler = keys[ev.key];
      if (!handler) return;
      ev.preventDefault();
      handler();
    });
    let resizeTimer = null;
    window.addEventListener("resize", function () {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(function () {
        if (!root.isConnected || !pz) return;
        const keep = { real: real(), pan: pz.getPan() };
        sizeFrame();
        pz.resize();
        pz.zoomBy(keep.real / real());
        pz.pan(keep.pan);
      }, 150);
    });

    start(slot ? views[slot] : null);
    return {
      // Draw another picture in the same frame, keeping the view the reader chose.
      replace: function (markup) {
        const chosen = slot ? views[slot] : null;
        pz.destroy();
        frame.innerHTML = markup;
        const next = frame.querySelector("svg");
        const nextSize = next && natural(next);
        if (!nextSize) return;
        svg = next;
        size = nextSize;
        start(chosen);
      },
      real: function () { return real(); },
    };
  }

  window.GantryDiagram = { attach: attach };
})();
