// Keyboard labelling. Every answer is POSTed and committed before the page shows the next item
// (the page reloads from the server), so what is on screen is always what the server holds.
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf"]') || {}).content || "";
  var root = document.getElementById("item");
  var status = document.getElementById("status");
  var help = document.getElementById("help");
  var busy = false;
  var ranking = [];
  var score = null;

  function say(text) { if (status) { status.textContent = text; } }

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
      body: JSON.stringify(body)
    }).then(function (response) {
      if (response.ok) { return true; }
      return response.json().then(function (j) { say("Not saved: " + j.error); return false; },
                                   function () { say("Not saved: HTTP " + response.status); return false; });
    }, function () { say("Not saved: the server cannot be reached"); return false; });
  }

  function send(answer) {
    if (busy || !root || !root.dataset.item) { return; }
    busy = true;
    var body = {item: Number(root.dataset.item), answer: answer};
    var note = document.getElementById("note");
    if (note && note.value.trim()) { body.note = note.value; }
    var rewrite = document.getElementById("rewrite");
    if (rewrite && rewrite.value.trim()) { body.rewrite = rewrite.value; }
    say("Saving…");
    post("/api/labels", body).then(function (ok) { if (ok) { location.reload(); } else { busy = false; } });
  }

  function undo() {
    if (busy) { return; }
    busy = true;
    post("/api/undo", {}).then(function (ok) { if (ok) { location.reload(); } else { busy = false; } });
  }

  function toggleHelp() { if (help) { help.hidden = !help.hidden; } }

  function showRanking() {
    var shown = document.getElementById("ranking");
    if (shown) { shown.textContent = ranking.length ? ranking.join(" > ") : "–"; }
  }

  function rankOrderFromList() {
    var cards = document.querySelectorAll("#rank-list .reply");
    return Array.prototype.map.call(cards, function (c) { return Number(c.dataset.position); });
  }

  function flagsChecked() {
    var boxes = document.querySelectorAll('input[name="flag"]:checked');
    return Array.prototype.map.call(boxes, function (b) { return b.value; });
  }

  var kind = root ? root.dataset.kind : "none";
  var replies = root ? Number(root.dataset.replies || 0) : 0;

  document.addEventListener("keydown", function (event) {
    var tag = event.target.tagName;
    if (tag === "TEXTAREA" || tag === "INPUT") {
      if (event.key === "Escape") { event.target.blur(); }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var key = event.key;
    if (key === "?") { toggleHelp(); return; }
    if (key === "u") { undo(); return; }
    if (key === "s") { send("skip"); return; }
    if (kind === "compare") {
      if (key === "a" || key === "b") { send(key); }
      else if (key === "t") { send("tie"); }
    } else if (kind === "rank") {
      var n = Number(key);
      if (n >= 1 && n <= replies && ranking.indexOf(n) < 0) { ranking.push(n); showRanking(); }
      else if (key === "Backspace") { ranking.pop(); showRanking(); }
      else if (key === "Enter" && ranking.length === replies) { send(ranking); }
    } else if (kind === "rate") {
      var s = Number(key);
      if (s >= 1 && s <= 7) { score = s; document.getElementById("score").textContent = s; }
      else if (key === "Enter" && score !== null) { send(score); }
    } else if (kind === "flags") {
      var f = Number(key);
      var boxes = document.querySelectorAll('input[name="flag"]');
      if (f >= 1 && f <= boxes.length) { boxes[f - 1].checked = !boxes[f - 1].checked; }
      else if (key === "Enter") { send(flagsChecked()); }
    }
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button");
    if (!button) { return; }
    if (button.id === "help-button") { toggleHelp(); }
    else if (button.dataset.answer) { send(button.dataset.answer); }
    else if (button.dataset.score) { send(Number(button.dataset.score)); }
    else if (button.id === "send-order") { send(ranking.length === replies ? ranking : rankOrderFromList()); }
    else if (button.id === "send-flags") { send(flagsChecked()); }
  });

  // Ranking by dragging: the cards' order is the ranking, best first.
  var dragged = null;
  document.querySelectorAll("#rank-list .reply").forEach(function (card) {
    card.addEventListener("dragstart", function () { dragged = card; });
    card.addEventListener("dragover", function (event) { event.preventDefault(); });
    card.addEventListener("drop", function (event) {
      event.preventDefault();
      if (dragged && dragged !== card) { card.parentNode.insertBefore(dragged, card); }
      ranking = rankOrderFromList(); showRanking();
    });
  });
})();
