// Live pages: on a change in the center, fetch this same page again and swap its <main>, so
// the board (and every other page) stays current without a reload. Not while staff are
// typing into a form, and not more than once a second. The refreshes say so in a header: they
// do not keep an idle session alive.
"use strict";
(function () {
  if (!window.EventSource || !window.fetch || !window.DOMParser) return;
  var busy = false, again = false, last = 0, timer = null;
  function typing() {
    var el = document.activeElement;
    return el && el.closest && el.closest("main") && /^(INPUT|SELECT|TEXTAREA)$/.test(el.tagName);
  }
  function refresh() {
    if (busy || typing()) { again = true; return; }
    var wait = 1000 - (Date.now() - last);
    if (wait > 0) {
      if (!timer) timer = setTimeout(function () { timer = null; refresh(); }, wait);
      return;
    }
    busy = true; again = false; last = Date.now();
    fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html", "X-Dolbom-Refresh": "1" } })
      .then(function (r) {
        // Sent elsewhere (the session ended: the login page): go there rather than stay stale.
        if (r.redirected) { location.href = r.url; return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html === null) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("main");
        var main = document.querySelector("main");
        if (fresh && main) main.innerHTML = fresh.innerHTML;
        document.documentElement.dataset.refreshed = String(Date.now());
      })
      .catch(function () {})
      .then(function () { busy = false; if (again) refresh(); });
  }
  document.addEventListener("focusout", function () { if (again) setTimeout(refresh, 300); });
  var source = new EventSource("/live"), opened = false;
  source.addEventListener("change", refresh);
  // The browser reconnects by itself; what changed meanwhile was not announced.
  source.addEventListener("open", function () { if (opened) refresh(); opened = true; });
})();
