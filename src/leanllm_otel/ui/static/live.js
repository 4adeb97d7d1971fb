// leanllm-otel viewer, live mode: poll /live for rows stored since the last answer and put them on top.
// Rows arrive as server-rendered (escaped) HTML; without JavaScript the page refreshes itself instead.
(function () {
  "use strict";
  var marker = document.getElementById("live");
  var body = document.getElementById("events-body");
  if (!marker || !body || marker.getAttribute("data-live") !== "1") { return; }
  var watermark = marker.getAttribute("data-watermark");
  var base = marker.getAttribute("data-url");
  var limit = parseInt(marker.getAttribute("data-limit") || "50", 10);
  var total = document.getElementById("total");
  var interval = 1500;
  // Ids already accounted for: the rows shown, and every row stored in the overlap window before the page.
  var seen = new Set((marker.getAttribute("data-seen") || "").split(" ").filter(Boolean));
  body.querySelectorAll("tr[data-id]").forEach(function (row) { seen.add(row.getAttribute("data-id")); });

  function apply(data) {
    watermark = data.watermark;
    var holder = document.createElement("tbody");
    holder.innerHTML = data.rows;
    var fresh = Array.prototype.slice.call(holder.querySelectorAll("tr[data-id]")).reverse();
    var added = 0;
    fresh.forEach(function (row) {
      var id = row.getAttribute("data-id");
      if (seen.has(id)) { return; }
      seen.add(id);
      row.classList.add("new");
      body.insertBefore(row, body.firstChild);
      added++;
    });
    while (body.children.length > limit) { body.removeChild(body.lastElementChild); }
    if (total && added) {
      var count = parseInt(total.textContent.replace(/,/g, ""), 10) + added;
      total.textContent = count.toLocaleString("en-US");
    }
  }

  function poll() {
    var url = base + "&recorded_after=" + encodeURIComponent(watermark);
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) { if (data) { apply(data); } setTimeout(poll, interval); })
      .catch(function () { setTimeout(poll, interval * 4); });
  }

  setTimeout(poll, interval);
})();
