/* Staff review pages: the queue (/review) and one ticket (/review/{id}).
 * Plain JS, no build step. Every change is a POST to the JSON API, whose `detail` is shown on error.
 */
(function () {
  "use strict";

  var REVIEWER_KEY = "triage.reviewer";
  var MAX_RESULTS = 50;
  var DEBOUNCE_MS = 60;

  function $(selector, root) { return (root || document).querySelector(selector); }

  function escapeHtml(value) {
    return String(value).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  // ---- shared: status line, reviewer name, the corrections API, shortcut guard -------------

  function showStatus(message, kind) {
    var el = $("#status");
    el.textContent = message;
    el.className = "status " + (kind || "");
  }

  function initReviewer() {
    var input = $("#reviewer");
    input.value = localStorage.getItem(REVIEWER_KEY) || "";
    input.addEventListener("input", function () {
      localStorage.setItem(REVIEWER_KEY, input.value.trim());
    });
  }

  /** The reviewer's name, or null after telling them (in Chinese) that it is required. */
  function requireReviewer() {
    var input = $("#reviewer");
    var name = input.value.trim();
    if (!name) {
      showStatus("请先在页面右上角填写审核人姓名，再保存。", "error");
      input.classList.add("missing");
      input.focus();
      return null;
    }
    input.classList.remove("missing");
    localStorage.setItem(REVIEWER_KEY, name);
    return name;
  }

  function postCorrection(ticketId, body) {
    return fetch("/v1/tickets/" + encodeURIComponent(ticketId) + "/corrections", {
      method: "POST",
      headers: { "content-type": "application/json", "accept": "application/json" },
      body: JSON.stringify(body),
    }).catch(function (error) {
      throw new Error("无法连接服务器（" + error.message + "）");
    }).then(function (response) {
      if (response.ok) { return response.json(); }
      return response.json().catch(function () { return {}; }).then(function (data) {
        var detail = data && data.detail;
        if (detail && typeof detail !== "string") { detail = JSON.stringify(detail); }
        throw new Error(detail || ("HTTP " + response.status));
      });
    });
  }

  /** True when a key press belongs to a text field, not to the page's shortcuts. */
  function typing(event) {
    var t = event.target;
    if (!t || !t.tagName) { return false; }
    if (t.isContentEditable || t.tagName === "TEXTAREA" || t.tagName === "SELECT") { return true; }
    return t.tagName === "INPUT" && ["checkbox", "radio", "button", "submit"].indexOf(t.type) < 0;
  }

  function plainKey(event) {
    return !(event.ctrlKey || event.metaKey || event.altKey);
  }

  // ---- the queue page ------------------------------------------------------------------------

  function initQueue() {
    var table = $("#queue");
    var rows = Array.prototype.slice.call(document.querySelectorAll("#queue .rows > [data-ticket]"));
    var current = -1;
    var bulk = $("#bulk-accept");
    var busy = false;

    function select(index) {
      if (!rows.length) { current = -1; return; }
      index = Math.max(0, Math.min(rows.length - 1, index));
      if (current >= 0 && rows[current]) { rows[current].classList.remove("selected"); }
      current = index;
      rows[current].classList.add("selected");
      rows[current].scrollIntoView({ block: "nearest" });
    }

    function checkedRows() {
      return rows.filter(function (row) { return $(".pick", row).checked; });
    }

    function refreshBulk() {
      var n = checkedRows().length;
      bulk.disabled = busy || n === 0;
      bulk.textContent = n ? "批量确认（" + n + "）" : "批量确认";
    }

    function remove(row) {
      var index = rows.indexOf(row);
      row.parentNode.removeChild(row);
      rows.splice(index, 1);
      if (index < current || current >= rows.length) { current -= 1; }
      if (rows.length && current < 0) { current = 0; }
      if (current >= 0 && rows[current]) { rows[current].classList.add("selected"); }
      $("#count b").textContent = String(rows.length);
    }

    function accept(targets, note) {
      var reviewer = requireReviewer();
      if (!reviewer || !targets.length || busy) { return Promise.resolve(); }
      busy = true;
      refreshBulk();
      var done = 0;
      var failures = [];
      var chain = Promise.resolve();
      targets.forEach(function (row) {
        chain = chain.then(function () {
          return postCorrection(row.dataset.ticket, {
            subitem: row.dataset.subitem, department: row.dataset.department || null,
            reviewer: reviewer, note: note,
          }).then(function () { remove(row); done += 1; }, function (error) {
            failures.push("#" + row.dataset.ticket + "：" + error.message);
          });
        });
      });
      return chain.then(function () {
        busy = false;
        refreshBulk();
        if (failures.length) {
          showStatus("已确认 " + done + " 件；" + failures.length + " 件失败：" + failures.join("；"), "error");
        } else {
          showStatus("已确认 " + done + " 件。", "ok");
        }
      });
    }

    if (table) {
      table.addEventListener("change", function (event) {
        if (event.target.id === "check-all") {
          rows.forEach(function (row) { $(".pick", row).checked = event.target.checked; });
        }
        refreshBulk();
      });
      table.addEventListener("click", function (event) {
        var row = event.target.closest("[data-ticket]");
        if (row) { select(rows.indexOf(row)); }
      });
    }
    bulk.addEventListener("click", function () { accept(checkedRows(), "批量确认无误"); });

    document.addEventListener("keydown", function (event) {
      if (typing(event) || !plainKey(event) || !rows.length) { return; }
      var row = current >= 0 ? rows[current] : null;
      switch (event.key) {
        case "j": select(current + 1); break;
        case "k": select(current < 0 ? 0 : current - 1); break;
        case "Enter":
          if (!row || event.target.tagName === "A" || event.target.tagName === "BUTTON") { return; }
          window.location.assign($("a", row).href);
          break;
        case "x":
          if (!row) { return; }
          $(".pick", row).checked = !$(".pick", row).checked;
          refreshBulk();
          break;
        case "a":
          if (!row) { return; }
          accept([row], "确认无误");
          break;
        default: return;
      }
      event.preventDefault();
    });
    if (rows.length) { select(0); }
    refreshBulk();
  }

  // ---- the taxonomy picker -------------------------------------------------------------------

  /** Every leaf once, with its inherited department and a lower-case search text. */
  function flattenLeaves(roots, supported) {
    var leaves = [];
    var departments = [];
    var stack = [];
    for (var r = roots.length - 1; r >= 0; r--) { stack.push([roots[r], "", ""]); }
    while (stack.length) {
      var item = stack.pop();
      var node = item[0];
      var key = item[1] ? item[1] + "/" + node.name : node.name;
      var department = node.department || item[2];
      if (node.department) { departments.push(node.department); }
      var children = node.children || [];
      if (!children.length) {
        var keywords = (node.keywords || []).join("、");
        var top = key.split("/")[0];
        leaves.push({
          key: key, name: node.name, keywords: keywords, department: department,
          supported: !supported || supported.indexOf(top) >= 0,
          name_lc: node.name.toLowerCase(),
          words: (key + "\u0001" + keywords + "\u0001" + (node.code || "")).toLowerCase(),
          hay: (key + "\u0001" + keywords + "\u0001" + (node.code || "") + "\u0001" +
            (node.description || "")).toLowerCase(),
        });
      }
      for (var c = children.length - 1; c >= 0; c--) { stack.push([children[c], key, department]); }
    }
    return { leaves: leaves, departments: departments };
  }

  /** Leaves matching every word of the query; name matches first, then path, then keywords. */
  function filterLeaves(leaves, query) {
    var terms = query.trim().toLowerCase().split(/\s+/).filter(Boolean);
    if (!terms.length) { return { total: 0, shown: [] }; }
    var ranked = [[], [], []];
    var total = 0;
    for (var i = 0; i < leaves.length; i++) {
      var leaf = leaves[i];
      var ok = true;
      var inName = true;
      for (var t = 0; t < terms.length; t++) {
        var hit = leaf.name_lc.indexOf(terms[t]) >= 0;
        if (!hit && leaf.hay.indexOf(terms[t]) < 0) { ok = false; break; }
        inName = inName && hit;
      }
      if (!ok) { continue; }
      total += 1;
      var bucket = inName ? 0 : (leaf.key.toLowerCase().indexOf(terms[0]) >= 0 ? 1 : 2);
      if (ranked[bucket].length < MAX_RESULTS) { ranked[bucket].push(leaf); }
    }
    var shown = ranked[0].concat(ranked[1], ranked[2]).slice(0, MAX_RESULTS);
    if (shown.every(function (leaf) { return leaf.words.indexOf(terms[0]) < 0; })) {
      // found only in descriptions, or not at all: add the leaves nearest by characters
      var near = nearLeaves(leaves, terms).shown.filter(function (leaf) {
        return shown.indexOf(leaf) < 0;
      });
      return { total: total, shown: shown.concat(near).slice(0, MAX_RESULTS),
               near: Math.min(near.length, MAX_RESULTS - shown.length) };
    }
    return { total: total, shown: shown };
  }

  /**
   * No leaf holds every word: the leaves holding most of the query's characters, for the word a
   * citizen or a colleague uses where the taxonomy uses another (噪音 for 噪声, 垃圾箱 for 垃圾桶).
   * At least half the Chinese characters must be there; name hits count double.
   */
  function nearLeaves(leaves, terms) {
    var chars = [];
    terms.join("").split("").forEach(function (c) {
      // Chinese characters carry meaning one by one; letters, digits and signs do not
      if (c.charCodeAt(0) > 0x2e80 && chars.indexOf(c) < 0) { chars.push(c); }
    });
    if (!chars.length) { return { total: 0, shown: [] }; }
    var need = Math.max(1, Math.ceil(chars.length / 2));
    var scored = [];
    for (var i = 0; i < leaves.length; i++) {
      var leaf = leaves[i];
      var found = 0;
      var score = 0;
      for (var c = 0; c < chars.length; c++) {
        if (leaf.name_lc.indexOf(chars[c]) >= 0) { found += 1; score += 2; }
        else if (leaf.hay.indexOf(chars[c]) >= 0) { found += 1; score += 1; }
      }
      if (found >= need) { scored.push([score, i]); }
    }
    scored.sort(function (a, b) { return b[0] - a[0] || a[1] - b[1]; });
    var shown = scored.slice(0, MAX_RESULTS).map(function (s) { return leaves[s[1]]; });
    return { total: scored.length, shown: shown };
  }

  function leafHtml(leaf, index, active) {
    var parent = leaf.key.slice(0, Math.max(0, leaf.key.length - leaf.name.length - 1));
    return '<li role="option" data-index="' + index + '" class="' +
      (index === active ? "active" : "") + (leaf.supported ? "" : " unsupported") + '"' +
      (leaf.supported ? "" : ' aria-disabled="true" title="模型暂无该一级分类的标注数据，不能选"') +
      '><span class="name">' + escapeHtml(leaf.name) + '</span> <span class="parent">' +
      escapeHtml(parent) + "</span>" +
      (leaf.keywords ? ' <span class="kw">' + escapeHtml(leaf.keywords) + "</span>" : "") + "</li>";
  }

  function createPicker(leaves, onChoose) {
    var search = $("#picker-search");
    var list = $("#picker-results");
    var info = $("#picker-info");
    var shown = [];
    var active = 0;
    var timer = null;
    var api = { leaves: leaves, timings: [] };

    function render() {
      var html = "";
      for (var i = 0; i < shown.length; i++) { html += leafHtml(shown[i], i, active); }
      list.innerHTML = html;
    }

    /** Filter and render now; the time it took is kept in `timings` (ms). */
    function run(query) {
      var start = performance.now();
      var found = filterLeaves(leaves, query);
      shown = found.shown;
      active = 0;
      render();
      info.textContent = query.trim()
        ? (found.near && !found.total ? "没有完全匹配的细目，以下 " + found.near + " 个相近" :
          found.near ? "找到 " + found.total + " 个细目，另有 " + found.near + " 个相近" :
          found.total ? "找到 " + found.total + " 个细目" +
          (found.total > shown.length ? "，显示前 " + shown.length + " 个" : "") : "没有匹配的细目")
        : "共 " + leaves.length + " 个考核细目，输入名称、路径或关键词搜索";
      var elapsed = performance.now() - start;
      api.timings.push(elapsed);
      api.lastQuery = query;
      return elapsed;
    }

    function choose(index) {
      var leaf = shown[index];
      if (!leaf) { return; }
      if (!leaf.supported) {
        showStatus("“" + leaf.key + "”所在的一级分类模型还没有标注数据，暂不能选。", "error");
        return;
      }
      onChoose(leaf);
    }

    function move(step) {
      if (!shown.length) { return; }
      active = (active + step + shown.length) % shown.length;
      render();
      var el = list.children[active];
      if (el) { el.scrollIntoView({ block: "nearest" }); }
    }

    search.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { run(search.value); }, DEBOUNCE_MS);
    });
    search.addEventListener("keydown", function (event) {
      if (event.key === "ArrowDown") { move(1); }
      else if (event.key === "ArrowUp") { move(-1); }
      else if (event.key === "Enter") {
        clearTimeout(timer);
        if (search.value.trim() && !shown.length) { run(search.value); }
        choose(active);
      } else if (event.key === "Escape") { search.blur(); }
      else { return; }
      event.preventDefault();
    });
    list.addEventListener("mousedown", function (event) { event.preventDefault(); });
    list.addEventListener("click", function (event) {
      var li = event.target.closest("li[data-index]");
      if (li) { choose(Number(li.dataset.index)); }
    });
    api.run = run;
    run("");
    return api;
  }

  // ---- the ticket page -----------------------------------------------------------------------

  function initTicket() {
    var page = JSON.parse($("#page-data").textContent);
    var prediction = page.prediction || {};
    var chosen = prediction.subitem || "";
    var department = $("#department");
    var busy = false;
    var flat = flattenLeaves(page.taxonomy, page.supported);
    var byKey = {};
    flat.leaves.forEach(function (leaf) { byKey[leaf.key] = leaf; });

    // the department list: the prediction's units (already in the page), then the taxonomy's
    var units = $("#units");
    var known = {};
    Array.prototype.forEach.call(units.options, function (o) { known[o.value] = true; });
    flat.departments.forEach(function (name) {
      if (known[name]) { return; }
      known[name] = true;
      var option = document.createElement("option");
      option.value = name;
      units.appendChild(option);
    });

    function setChosen(key) {
      chosen = key;
      $("#chosen-subitem").textContent = key;
      $("#chosen-changed").hidden = key === prediction.subitem;
      var leaf = byKey[key];
      var hint = $("#leaf-department");
      hint.textContent = "";
      if (leaf && leaf.department && leaf.department !== department.value) {
        hint.appendChild(document.createTextNode("该细目默认部门：" + leaf.department + " "));
        var use = document.createElement("button");
        use.type = "button";
        use.className = "link";
        use.textContent = "改用";
        use.addEventListener("click", function () {
          department.value = leaf.department;
          hint.textContent = "";
        });
        hint.appendChild(use);
      }
      document.querySelectorAll(".suggestion").forEach(function (b) {
        b.classList.toggle("chosen", b.dataset.subitem === key);
      });
    }

    var picker = createPicker(flat.leaves, function (leaf) {
      setChosen(leaf.key);
      showStatus("已选择：" + leaf.key, "ok");
    });
    window.triagePicker = picker;  // for the benchmark and the tests

    var suggestions = Array.prototype.slice.call(document.querySelectorAll(".suggestion"));
    suggestions.forEach(function (button) {
      button.addEventListener("click", function () { setChosen(button.dataset.subitem); });
    });
    if (chosen) { setChosen(chosen); }

    function doneUrl() {
      return page.back + (page.back.indexOf("?") >= 0 ? "&" : "?") + "saved=" + page.ticket_id;
    }

    function submit(body) {
      var reviewer = requireReviewer();
      if (!reviewer || busy) { return; }
      body.reviewer = reviewer;
      var note = $("#note").value.trim();
      if (note) { body.note = note; }
      var sentiment = $("#sentiment").value;
      if (sentiment) { body.sentiment = sentiment; }
      busy = true;
      $("#save").disabled = $("#accept").disabled = true;
      showStatus("正在保存……", "");
      postCorrection(page.ticket_id, body).then(function () {
        window.location.assign(doneUrl());
      }, function (error) {
        busy = false;
        $("#save").disabled = false;
        $("#accept").disabled = !page.prediction;
        showStatus("保存失败：" + error.message, "error");
      });
    }

    function acceptAsIs() {
      if (!page.prediction) { return; }
      submit({ subitem: prediction.subitem, department: prediction.department });
    }

    function save() {
      var body = {};
      if (chosen) { body.subitem = chosen; }
      var unit = department.value.trim();
      if (unit) { body.department = unit; }
      if (!body.subitem && !body.department && !$("#sentiment").value) {
        showStatus("请选择考核细目、责任单位或情感后再保存。", "error");
        return;
      }
      submit(body);
    }

    $("#accept").addEventListener("click", acceptAsIs);
    $("#save").addEventListener("click", save);

    document.addEventListener("keydown", function (event) {
      if (!plainKey(event)) { return; }
      if (typing(event)) {
        if (event.key === "Escape") { event.target.blur(); }
        return;
      }
      var key = event.key;
      if (key === "/") { $("#picker-search").focus(); $("#picker-search").select(); }
      else if (key === "1" || key === "2" || key === "3") {
        var button = suggestions[Number(key) - 1];
        if (!button) { return; }
        button.click();
      } else if (key === "a") { acceptAsIs(); }
      else if (key === "s") { save(); }
      else { return; }
      event.preventDefault();
    });
  }

  // ---- start -----------------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", function () {
    initReviewer();
    var kind = document.body.dataset.page;
    if (kind === "queue") { initQueue(); }
    else if (kind === "ticket") { initTicket(); }
  });
})();
