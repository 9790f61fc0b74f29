// Conveniences only: every page works without this script.
// - <time datetime> shows the viewer's local time (the server writes UTC);
// - copy buttons put an id on the clipboard;
// - "/" focuses the search box.
(function () {
  "use strict";
  function pad(n) { return String(n).padStart(2, "0"); }
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    if (/ago$/.test(el.textContent)) { el.title = new Date(el.dateTime).toLocaleString(); return; }
    var d = new Date(el.dateTime);
    if (isNaN(d)) { return; }
    el.title = el.dateTime;
    el.textContent = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  });
  document.querySelectorAll("button.copy[data-copy]").forEach(function (b) {
    if (!navigator.clipboard) { return; }
    b.hidden = false;
    b.addEventListener("click", function () {
      navigator.clipboard.writeText(b.dataset.copy).then(function () {
        b.textContent = "copied";
        setTimeout(function () { b.textContent = "copy"; }, 1500);
      });
    });
  });
  document.addEventListener("keydown", function (e) {
    var t = e.target.tagName;
    if (e.key === "/" && t !== "INPUT" && t !== "TEXTAREA" && t !== "SELECT") {
      e.preventDefault();
      document.getElementById("search").focus();
    }
  });
  var foot = document.querySelector("footer");
  if (foot) { foot.innerHTML = foot.innerHTML.replace("times in UTC", "times in your local time zone"); }
})();
