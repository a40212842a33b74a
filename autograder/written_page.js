"use strict";
(function () {
  var body = document.body;
  var question = body.dataset.question;
  var storageKey = "seqmod-written:" + body.dataset.page;
  var answers = Array.prototype.slice.call(document.querySelectorAll("article.answer"));
  var progress = document.getElementById("progress");

  function items(article) {
    return Array.prototype.slice.call(article.querySelectorAll("input.item"));
  }

  function entry(article) {
    var ticked = items(article).filter(function (i) { return i.checked; })
      .map(function (i) { return Number(i.dataset.index); });
    var scored = article.querySelector("input.scored").checked;
    var comment = article.querySelector("textarea.comment").value;
    var score = items(article).reduce(function (sum, i) {
      return sum + (i.checked ? Number(i.dataset.points) : 0);
    }, 0);
    return { ticked: ticked, scored: scored, comment: comment, score: scored ? score : null };
  }

  function show(article) {
    var e = entry(article);
    article.querySelector("output.score").textContent = e.scored ? String(e.score) : "\u2013";
    article.classList.toggle("is-scored", e.scored);
  }

  function collect() {
    var out = {};
    answers.forEach(function (article) {
      var e = entry(article);
      if (e.scored || e.ticked.length || e.comment) { out[article.dataset.id] = e; }
    });
    return out;
  }

  function persist() {
    var done = answers.filter(function (a) { return a.querySelector("input.scored").checked; }).length;
    progress.textContent = done + " of " + answers.length + " scored";
    try { localStorage.setItem(storageKey, JSON.stringify(collect())); } catch (err) { /* storage off */ }
  }

  function restore() {
    var saved = null;
    try { saved = JSON.parse(localStorage.getItem(storageKey) || "null"); } catch (err) { saved = null; }
    answers.forEach(function (article) {
      var e = saved && Object.prototype.hasOwnProperty.call(saved, article.dataset.id) ? saved[article.dataset.id] : null;
      if (e) {
        items(article).forEach(function (i) { i.checked = (e.ticked || []).indexOf(Number(i.dataset.index)) >= 0; });
        article.querySelector("input.scored").checked = !!e.scored;
        article.querySelector("textarea.comment").value = e.comment || "";
      } else if (article.dataset.noanswer === "1") {
        article.querySelector("input.scored").checked = true;
      }
      show(article);
    });
  }

  answers.forEach(function (article) {
    items(article).forEach(function (i) {
      i.addEventListener("change", function () {
        article.querySelector("input.scored").checked = true;
        show(article); persist();
      });
    });
    article.querySelector("input.scored").addEventListener("change", function () { show(article); persist(); });
    article.querySelector("textarea.comment").addEventListener("input", persist);
  });

  document.getElementById("save").addEventListener("click", function () {
    var saved = {
      format: "seqmod-written-scores", version: 1,
      assignment: body.dataset.assignment, question: question, page: body.dataset.page,
      rubric: JSON.parse(body.dataset.rubric), answers: collect()
    };
    var blob = new Blob([JSON.stringify(saved, null, 1)], { type: "application/json" });
    var link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = body.dataset.assignment + "-" + question + ".scores.json";
    document.body.appendChild(link);
    link.click();
    setTimeout(function () { URL.revokeObjectURL(link.href); link.remove(); }, 1000);
  });

  restore();
  persist();
})();
