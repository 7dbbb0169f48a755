// The review of a change set: its diagram zooms and pans as the other pages' do, and Apply is
// pressed once (a second press while the first request is under way would only be refused).
(function () {
  "use strict";
  const view = document.querySelector("#change-diagram-view [data-diagram]");
  if (view && window.GantryDiagram) window.GantryDiagram.attach(view, "changes");
  const form = document.getElementById("apply-form");
  if (form) {
    form.addEventListener("submit", function () {
      const button = document.getElementById("apply-button");
      if (button) setTimeout(function () { button.disabled = true; }, 0);
    });
  }
})();
