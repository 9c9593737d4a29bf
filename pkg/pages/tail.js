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
      pre: pre, pending: "", cls: {},
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
            t.pre.textContent = "";
            t.offset = 0;
            t.decoder = new TextDecoder();
            t.pending = "";
            t.cls = {};
          }
          t.offset += buf.byteLength;
          render(t, t.decoder.decode(buf, {stream: true}));
        });
      })
      .catch(function () { return null; });
  }

  // render appends text to t's log, its SGR colour sequences (ESC [ n m)
  // turned into classes of text-only spans, never into HTML; any other
  // ESC shows as U+241B. A sequence split across reads waits in pending.
  function render(t, text) {
    text = t.pending + text;
    t.pending = "";
    var cut = text.search(/\x1b(\[[0-9;:]*)?$/);
    if (cut >= 0) {
      t.pending = text.slice(cut);
      text = text.slice(0, cut);
    }
    var sgr = /\x1b\[([0-9;:]*)m/g;
    var at = 0;
    var m;
    while ((m = sgr.exec(text)) !== null) {
      append(t, text.slice(at, m.index));
      apply(t.cls, m[1]);
      at = sgr.lastIndex;
    }
    append(t, text.slice(at));
  }

  function append(t, s) {
    if (s === "") {
      return;
    }
    s = s.replace(/\x1b/g, "\u241b");
    var names = Object.keys(t.cls).map(function (k) { return t.cls[k]; }).filter(Boolean);
    if (names.length === 0) {
      t.pre.appendChild(document.createTextNode(s));
      return;
    }
    var span = document.createElement("span");
    span.className = names.join(" ");
    span.textContent = s;
    t.pre.appendChild(span);
  }

  // apply sets cls (bold, fg, bg) from one SGR's parameters: the 8 and
  // 16 basic colours, bold and resets; other parameters are ignored.
  function apply(cls, params) {
    params.split(/[;:]/).forEach(function (p) {
      var n = p === "" ? 0 : parseInt(p, 10);
      if (n === 0) {
        cls.bold = cls.fg = cls.bg = "";
      } else if (n === 1) {
        cls.bold = "sgr-bold";
      } else if (n === 22) {
        cls.bold = "";
      } else if (n >= 30 && n <= 37) {
        cls.fg = "sgr-fg" + (n - 30);
      } else if (n >= 90 && n <= 97) {
        cls.fg = "sgr-fg" + (n - 90 + 8);
      } else if (n === 39) {
        cls.fg = "";
      } else if (n >= 40 && n <= 47) {
        cls.bg = "sgr-bg" + (n - 40);
      } else if (n >= 100 && n <= 107) {
        cls.bg = "sgr-bg" + (n - 100 + 8);
      } else if (n === 49) {
        cls.bg = "";
      }
    });
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
