// Steward's only script (progressive enhancement; every page works without it):
// counts down the legal clocks marked <time data-deadline="RFC 3339">.
(function () {
  "use strict";
  function left(ms) {
    var sign = ms < 0 ? "overdue by " : "";
    ms = Math.abs(ms);
    var h = Math.floor(ms / 3600000), m = Math.floor((ms % 3600000) / 60000), s = Math.floor((ms % 60000) / 1000);
    return sign + h + " h " + m + " min " + s + " s" + (sign ? "" : " left");
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-deadline]").forEach(function (el) {
      var at = Date.parse(el.getAttribute("data-deadline"));
      if (!isNaN(at)) { el.textContent = left(at - now); }
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    if (document.querySelector("[data-deadline]")) { tick(); setInterval(tick, 1000); }
  });
})();
