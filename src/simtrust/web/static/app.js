// Progressive enhancement only: every page works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", function () {
      document.querySelectorAll('input[name="iccid"]').forEach(function (box) { box.checked = all.checked; });
    });
  }
  var job = document.getElementById("job");
  if (job && job.dataset.status === "running") {
    var poll = function () {
      fetch("/ui/jobs/" + encodeURIComponent(job.dataset.job) + "/progress", { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (j) {
          document.getElementById("job-progress").value = j.done;
          ["status", "done", "changed", "skipped"].forEach(function (k) {
            document.getElementById("job-" + k).textContent = typeof j[k] === "number" ? j[k].toLocaleString("en") : j[k];
          });
          document.getElementById("job-seconds").textContent = j.seconds.toFixed(1);
          if (j.status === "running") { setTimeout(poll, 700); } else { window.location.reload(); }
        })
        .catch(function () { setTimeout(poll, 2000); });
    };
    setTimeout(poll, 500);
  }
});
