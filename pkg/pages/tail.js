(function () {
  "use strict";
  // Follows the build while it runs: build.json for the tests' states,
  // and byte ranges of each running test's out.txt, appended to its log.
  var every = 1500;
  var tails = {};
  document.querySelectorAll("section[data-tail]").forEach(function (sec) {
    var pre = sec.querySelector("pre");
    tails[sec.getAttribute("data-test")] = {
      sec: sec, src: sec.getAttribute("data-tail"), offset: 0,
      text: pre.appendChild(document.createTextNode("")),
      decoder: new TextDecoder(), active: false, last: false
    };
  });

  function tail(t) {
    return fetch(t.src, {cache: "no-store", headers: {Range: "bytes=" + t.offset + "-"}})
      .then(function (r) {
        if (r.status !== 200 && r.status !== 206) {
          return null; // 416: nothing new yet; 404: not started here
        }
        return r.arrayBuffer().then(function (buf) {
          if (r.status === 200) { // the whole log, not a range
            t.text.data = "";
            t.offset = 0;
            t.decoder = new TextDecoder();
          }
          t.offset += buf.byteLength;
          t.text.appendData(t.decoder.decode(buf, {stream: true}));
        });
      })
      .catch(function () { return null; });
  }

  function show(b) {
    var summary = document.getElementById("summary");
    summary.textContent = b.summary.state + ": " + b.summary.description;
    summary.className = "summary " + b.summary.state;
    var live = false;
    b.tests.forEach(function (tj) {
      var cell = document.getElementById("state-" + tj.name);
      if (cell) {
        cell.textContent = tj.state + (tj.flaky ? " (flaky)" : "");
        cell.className = "state " + tj.state;
      }
      var desc = document.getElementById("desc-" + tj.name);
      if (desc) {
        desc.textContent = tj.description;
      }
      var attempts = document.getElementById("attempts-" + tj.name);
      if (attempts) {
        attempts.textContent = tj.attempt_count;
        (tj.attempt_lines || []).forEach(function (line) {
          attempts.appendChild(document.createElement("br"));
          attempts.appendChild(document.createElement("small")).textContent = line;
        });
      }
      var time = document.getElementById("time-" + tj.name);
      if (time) {
        time.textContent = tj.time;
      }
      var t = tails[tj.name];
      var running = tj.state === "running";
      live = live || running || tj.state === "queued" || tj.state === "retrying";
      if (!t) {
        return;
      }
      if (running) {
        t.sec.hidden = false;
      }
      t.last = t.active && !running;
      t.active = running;
    });
    return live;
  }

  function step() {
    fetch("build.json", {cache: "no-store"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (b) {
        var live = b ? show(b) : true;
        var pending = Object.keys(tails).map(function (k) { return tails[k]; })
          .filter(function (t) { return t.active || t.last; });
        return Promise.all(pending.map(tail)).then(function () {
          pending.forEach(function (t) { t.last = false; });
          return live;
        });
      })
      .catch(function () { return true; })
      .then(function (live) {
        if (live) {
          setTimeout(step, every);
        }
      });
  }
  step();
})();
