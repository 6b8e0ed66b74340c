// Progress bars that refresh themselves. A bar is server-rendered (omni.admin_tools.progress_bar)
// as <div class="omni-progress" data-poll="URL" data-state="running">; while its state is queued
// or running, it asks URL every 2 s for its new rendering and swaps it in, until the work ends.
// Then it fires "omni:progress-done"; a bar inside an element marked data-reload-when-done
// reloads the page, whose outcome (an import's counts or bad rows) is drawn by the server.
(function () {
  "use strict";
  var LIVE = { queued: true, running: true };
  var PERIOD = 2000;

  function poll(bar) {
    var url = bar.getAttribute("data-poll");
    if (!url || !LIVE[bar.getAttribute("data-state")]) return;
    window.setTimeout(function () {
      fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
        .then(function (response) {
          if (!response.ok) throw new Error(response.status);
          return response.text();
        })
        .then(function (html) {
          var holder = document.createElement("div");
          holder.innerHTML = html.trim();
          var fresh = holder.firstElementChild;
          if (!fresh) return;
          bar.replaceWith(fresh);
          if (LIVE[fresh.getAttribute("data-state")]) poll(fresh);
          else {
            document.dispatchEvent(new CustomEvent("omni:progress-done", { detail: fresh }));
            if (fresh.closest("[data-reload-when-done]")) window.location.reload();
          }
        })
        .catch(function () { poll(bar); });
    }, PERIOD);
  }

  function start() {
    document.querySelectorAll(".omni-progress[data-poll]").forEach(poll);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
