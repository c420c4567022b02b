/* codebuild-local dashboard: the live log (server-sent events over the
 * build's log stream), ANSI colours, line links.  No framework, nothing
 * fetched from anywhere else. */
"use strict";
(function () {
  var log = document.getElementById("log");
  if (!log) return;
  var state = document.getElementById("log-state");
  var n = 0;
  var cur = {};  /* the SGR state carried from line to line */

  function classes() {
    var c = [];
    if (cur.bold) c.push("a-bold");
    if (cur.dim) c.push("a-dim");
    if (cur.italic) c.push("a-italic");
    if (cur.underline) c.push("a-underline");
    if (cur.fg) c.push("a-fg" + cur.fg);
    if (cur.bg) c.push("a-bg" + cur.bg);
    return c.join(" ");
  }

  function sgr(params) {
    var ps = params === "" ? [0] : params.split(";").map(Number);
    for (var i = 0; i < ps.length; i++) {
      var p = ps[i];
      if (p === 0) cur = {};
      else if (p === 1) cur.bold = true;
      else if (p === 2) cur.dim = true;
      else if (p === 3) cur.italic = true;
      else if (p === 4) cur.underline = true;
      else if (p === 22) { cur.bold = false; cur.dim = false; }
      else if (p === 23) cur.italic = false;
      else if (p === 24) cur.underline = false;
      else if ((p >= 30 && p <= 37) || (p >= 90 && p <= 97)) cur.fg = p;
      else if (p === 39) cur.fg = 0;
      else if (p >= 40 && p <= 47) cur.bg = p;
      else if (p === 49) cur.bg = 0;
      else if (p === 38 || p === 48) i += ps[i + 1] === 5 ? 2 : 4; /* 256 / rgb: ignored */
    }
  }

  /* text -> spans; escape sequences other than SGR are dropped */
  function render(el, text) {
    var re = /\x1b\[([0-9;]*)([A-Za-z])/g, last = 0, m;
    function put(s) {
      if (!s) return;
      var c = classes();
      if (!c) { el.appendChild(document.createTextNode(s)); return; }
      var span = document.createElement("span");
      span.className = c;
      span.textContent = s;
      el.appendChild(span);
    }
    while ((m = re.exec(text)) !== null) {
      put(text.slice(last, m.index));
      if (m[2] === "m") sgr(m[1]);
      last = re.lastIndex;
    }
    put(text.slice(last).replace(/\x1b/g, ""));
  }

  /* where each failed phase's last command starts in the log */
  var lastCommand = 0, failedAt = {};
  function note(text) {
    if (/^\[Container\] \S+ \S+ Running command /.test(text)) lastCommand = n;
    var m = /^\[Container\] \S+ \S+ Phase complete: (\S+) State: FAILED/.exec(text);
    if (m) failedAt[m[1]] = lastCommand || n;
  }
  function linkFailures() {
    Object.keys(failedAt).forEach(function (phase) {
      var row = document.querySelector('#timeline tr[data-phase="' + phase + '"]');
      var ctx = row && row.nextElementSibling;
      if (!ctx || !ctx.classList.contains("context") || ctx.querySelector("a.to-log")) return;
      var a = document.createElement("a");
      a.className = "to-log";
      a.href = "#L" + failedAt[phase];
      a.textContent = "log line " + failedAt[phase];
      ctx.firstElementChild.appendChild(document.createTextNode(" "));
      ctx.firstElementChild.appendChild(a);
    });
  }

  function addLine(text) {
    n++;
    note(text);
    var row = document.createElement("div");
    row.className = "ln";
    row.id = "L" + n;
    var a = document.createElement("a");
    a.href = "#L" + n;
    a.textContent = n;
    a.setAttribute("aria-label", "line " + n);
    var t = document.createElement("span");
    t.className = "tx";
    render(t, text);
    row.appendChild(a);
    row.appendChild(t);
    var atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.appendChild(row);
    if (atEnd) log.scrollTop = log.scrollHeight;
  }

  /* the page's other parts (summary, actions, phases, environment,
   * artifacts) again from the server, after a phase change or the end */
  var pending = null;
  var running = log.getAttribute("data-running") === "1";
  var chain = Promise.resolve();  /* one refresh at a time, in order */
  function refresh(then) {
    chain = chain.then(function () {
      if (!running) return;
      return fetch(location.pathname, {credentials: "same-origin"}).then(function (r) {
        return r.ok ? r.text() : null;
      }).then(function (html) {
        if (!html) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        ["dl.summary", "div.actions", "#timeline", "#env", "#artifacts"].forEach(function (sel) {
          var old = document.querySelector(sel), fresh = doc.querySelector(sel);
          if (old && fresh && !old.contains(document.activeElement)) old.replaceWith(fresh);
        });
      }).catch(function () {});
    }).then(function () { if (then) then(); });
  }
  var over = false;
  function soon() {
    if (pending || over) return;
    pending = setTimeout(function () { pending = null; refresh(); }, 200);
  }

  function finished(status) {
    state.textContent = "Build finished: " + status + " (" + n + " lines)";
    var st = document.querySelector("#build-status .st");
    if (st && status) { st.textContent = status; st.className = "st st-" + status; }
    var stop = document.querySelector("form.stop");
    if (stop) stop.remove();
    linkFailures();
    if (location.hash) {
      var t = document.getElementById(location.hash.slice(1));
      if (t) t.scrollIntoView();
    }
  }

  var es = new EventSource(log.getAttribute("data-src"));
  state.textContent = "Streaming the log...";
  es.onmessage = function (e) {
    addLine(e.data);
    if (/^\[Container\] \S+ \S+ (Phase complete|Entering phase)/.test(e.data)) soon();
  };
  es.addEventListener("end", function (e) {
    es.close();
    over = true;
    if (pending) { clearTimeout(pending); pending = null; }
    refresh(function () { finished(e.data); });
  });
  es.onerror = function () {
    if (es.readyState === EventSource.CLOSED) state.textContent = "The log stream closed.";
    else state.textContent = "Reconnecting to the log...";
  };
})();
