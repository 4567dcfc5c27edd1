// An issue's figures while it sends: every few seconds the live section is asked for again and
// put in place of the old one, tables left open staying open. Without this script the page
// shows the figures as they were when it loaded.
(function () {
  "use strict";
  var every = 3000;
  function current() { return document.getElementById("live"); }
  function tick() {
    var live = current();
    if (!live || live.dataset.live !== "true") return;
    fetch(live.dataset.src, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) {
        if (!r.ok) throw new Error("status " + r.status);
        return r.text();
      })
      .then(function (html) {
        var open = Array.prototype.map.call(live.querySelectorAll("details[open]"), function (d) { return d.id; });
        var holder = document.createElement("div");
        holder.innerHTML = html;
        var fresh = holder.querySelector("#live");
        if (!fresh) throw new Error("no figures");
        open.forEach(function (id) {
          var d = id && fresh.querySelector("#" + id);
          if (d) d.open = true;
        });
        live.replaceWith(fresh);
        setTimeout(tick, every);
      })
      .catch(function () { setTimeout(tick, every * 3); });
  }
  setTimeout(tick, every);
})();
