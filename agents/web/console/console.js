// The facecloud operator console: three views (Live, Gallery, Try) on the
// web agent's admin API. No framework and nothing fetched from elsewhere;
// the page runs under a CSP that allows only this script. The admin key is
// kept in sessionStorage (this tab only) and sent as X-API-Key.
"use strict";

(() => {
  const KEY = "facecloud-api-key";
  const POLL_MS = 2000;
  const $ = (id) => document.getElementById(id);
  let apiKey = sessionStorage.getItem(KEY) || "";

  // el builds an element: el("td", {class: "num"}, "12", child, ...).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "text") e.textContent = v;
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) e.append(c);
    return e;
  }

  function svg(tag, attrs) {
    const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }

  // ---- the API ----

  class APIError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // api calls path with the key; it returns {status, data} (data parsed
  // from JSON), or the Response itself with raw; a refusal throws an
  // APIError with the server's one-line reason.
  async function api(path, { method = "GET", body, raw = false } = {}) {
    let res;
    try {
      res = await fetch(path, { method, body, headers: { "X-API-Key": apiKey }, cache: "no-store" });
    } catch (err) {
      throw new APIError(0, "the service does not answer (" + err.message + ")");
    }
    if (raw && res.ok) return res;
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (_) {
      data = null;
    }
    if (!res.ok) {
      const reason = (data && data.error) || text.replace(/^error: /, "").trim() || res.statusText;
      if (res.status === 401) signOut("The key was refused: " + reason);
      throw new APIError(res.status, reason);
    }
    return { status: res.status, data };
  }

  // wait follows a 202 answer's location until the Result is there.
  async function wait(first) {
    let r = first;
    while (r.status === 202 && r.data && r.data.location) {
      r = await api(r.data.location + "?wait=30s");
    }
    return r.data;
  }

  // ---- formatting ----

  const clock = (t) => new Date(t).toLocaleTimeString([], { hour12: false });
  function ms(v) {
    if (v === null || v === undefined) return "–";
    if (v < 1000) return Math.round(v) + " ms";
    return (v / 1000).toFixed(v < 10000 ? 2 : 1) + " s";
  }
  function ago(seconds) {
    if (seconds < 1.5) return "just now";
    if (seconds < 90) return Math.round(seconds) + " s ago";
    return Math.round(seconds / 60) + " min ago";
  }
  const num = (v) => (v === null || v === undefined ? "?" : String(v));

  // ---- signing in, tabs ----

  function signOut(message) {
    apiKey = "";
    sessionStorage.removeItem(KEY);
    stopPolling();
    $("tabs").hidden = true;
    $("session").hidden = true;
    for (const s of document.querySelectorAll(".tab")) s.hidden = true;
    $("signin-panel").hidden = false;
    $("signin-error").textContent = message || "";
    $("key").value = "";
    $("key").focus();
  }

  async function signIn(key) {
    apiKey = key;
    try {
      const r = await api("/v1/status");
      sessionStorage.setItem(KEY, key);
      $("signin-panel").hidden = true;
      $("tabs").hidden = false;
      $("session").hidden = false;
      $("signin-error").textContent = "";
      showTab(r.data);
    } catch (err) {
      const msg = err.status === 403 ? "This key may not use the console (it needs the admin scope): " + err.message
        : err.status === 401 ? "The key was refused: " + err.message : err.message;
      signOut(msg);
    }
  }

  function currentTab() {
    const t = location.hash.replace("#", "");
    return ["live", "gallery", "try"].includes(t) ? t : "live";
  }

  function showTab(status) {
    if (!apiKey) return;
    const tab = currentTab();
    for (const a of document.querySelectorAll("#tabs a")) {
      if (a.dataset.tab === tab) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    for (const s of document.querySelectorAll(".tab")) s.hidden = s.id !== tab;
    if (tab === "live") {
      if (status) renderLive(status);
      startPolling();
    } else {
      stopPolling();
    }
    if (tab === "gallery") loadGallery();
  }

  // ---- Live ----

  let pollTimer = null;

  function startPolling() {
    stopPolling();
    const tick = async () => {
      pollTimer = null;
      if (!apiKey || currentTab() !== "live") return;
      if (document.visibilityState === "visible") {
        try {
          const r = await api("/v1/status");
          renderLive(r.data);
        } catch (err) {
          $("updated").textContent = "status unavailable: " + err.message;
        }
      }
      if (apiKey && currentTab() === "live") pollTimer = setTimeout(tick, POLL_MS);
    };
    pollTimer = setTimeout(tick, POLL_MS);
  }

  function stopPolling() {
    if (pollTimer) clearTimeout(pollTimer);
    pollTimer = null;
  }

  function renderLive(st) {
    const q = st.queue;
    $("q-visible").textContent = q ? q.visible : "?";
    $("q-inflight").textContent = q ? q.in_flight : "?";
    $("q-dead").textContent = q ? num(q.dead_letter) : "?";
    $("card-queue").classList.toggle("alert", !!(q && q.dead_letter > 0));
    $("q-note").textContent = !q ? "the queue could not be read"
      : q.dead_letter === null ? "dead letters unknown: the scaler has no handle on the dead-letter queue"
      : q.dead_letter > 0 ? "requests that failed every delivery wait in the dead-letter queue"
      : q.source === "scaler" ? "as the scaler last saw it, " + ago((Date.parse(st.time) - Date.parse(q.at)) / 1000)
      : "";

    const f = st.fleet;
    const sc = st.scaler;
    $("f-desired").textContent = f ? f.desired : "?";
    $("f-running").textContent = f ? f.running : "?";
    $("f-pending").textContent = f ? f.pending : "?";
    $("card-fleet").classList.toggle("stale", !sc || sc.stale);
    $("f-note").textContent = !sc ? "no report from the scaler yet"
      : (sc.stale ? "STALE: " : "") + "bounds " + sc.policy.min + "–" + sc.policy.max + " workers, " +
        sc.policy.target_backlog + " requests each; " + (f && f.desired >= sc.policy.max && sc.policy.max > 0 ? "at its maximum; " : "") +
        "scaler " + sc.holder + ", " + ago(sc.age_seconds);

    const r = st.requests;
    $("r-rate").textContent = r.rate.toFixed(r.rate < 10 ? 2 : 1);
    $("r-p50").textContent = ms(r.p50_ms);
    $("r-p95").textContent = ms(r.p95_ms);
    $("r-failed").textContent = r.failed;
    $("r-note").textContent = r.ok + " answered in the last " + Math.round(r.seconds) + " s" +
      (st.hosts.length > 1 ? " on " + st.hosts.length + " web hosts" : "");

    const t1 = Date.parse(st.time);
    const t0 = t1 - 10 * 60 * 1000;
    const at = (s) => Date.parse(s.t) + 5000;
    chart($("chart-rate"), t0, t1, [
      { cls: "s-ok", area: true, points: st.steps.map((s) => [Math.min(at(s), t1), s.rate]) },
      { cls: "s-bad", points: st.steps.map((s) => [Math.min(at(s), t1), s.failed / s.seconds]) },
    ], (v) => (v >= 10 ? v.toFixed(0) : v.toFixed(1)) + "/s");
    chart($("chart-latency"), t0, t1, [
      { cls: "s-p95", points: st.steps.map((s) => [Math.min(at(s), t1), s.p95_ms]) },
      { cls: "s-p50", area: true, points: st.steps.map((s) => [Math.min(at(s), t1), s.p50_ms]) },
    ], ms);
    chart($("chart-fleet"), t0, t1, [
      { cls: "s-backlog", area: true, points: st.fleet_steps.map((s) => [Math.min(at(s), t1), s.backlog]) },
      { cls: "s-desired", points: st.fleet_steps.map((s) => [Math.min(at(s), t1), s.desired]) },
      { cls: "s-running", points: st.fleet_steps.map((s) => [Math.min(at(s), t1), s.running]) },
    ], (v) => String(Math.round(v)));

    $("scaler-state").textContent = sc
      ? "Now: " + sc.last.action + " at " + sc.last.to + " — " + sc.last.reason + (sc.error ? ". Last poll failed: " + sc.error : "")
      : "The scaler has not reported.";
    fillTable($("decisions"), (sc && sc.decisions) || [], "no decision that changed the fleet in the last minutes", (d) => [
      el("td", { class: "time", text: clock(d.at) }),
      el("td", { class: "action-" + d.action, text: d.action }),
      el("td", { class: "num", text: d.from + " → " + d.to }),
      el("td", { text: d.reason }),
    ]);
    fillTable($("failures"), st.failures, "no failed call in the last 10 minutes", (x) => [
      el("td", { class: "time", text: clock(x.at) }),
      el("td", { class: "call", text: x.call, title: x.host ? "on " + x.host : null }),
      el("td", { class: "num code-" + String(x.status)[0], text: String(x.status) }),
      el("td", { text: x.reason + (x.id ? " (" + x.id + ")" : "") }),
    ]);

    const probs = $("problems");
    probs.replaceChildren(...st.problems.map((p) => el("li", { text: p })));
    $("updated").textContent = "updated " + clock(st.time);
    $("live").dataset.updated = st.time;
  }

  function fillTable(table, rows, empty, cells) {
    const body = table.tBodies[0];
    if (rows.length === 0) {
      body.replaceChildren(el("tr", {}, el("td", { class: "empty", colspan: String(table.tHead.rows[0].cells.length), text: empty })));
      return;
    }
    body.replaceChildren(...rows.map((r) => el("tr", {}, ...cells(r))));
  }

  // niceMax rounds v up to 1, 2 or 5 times a power of ten.
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  // chart draws series of [time ms, value] points (value null: a gap) on
  // t0..t1 into an SVG, with a y scale from 0 and three grid lines.
  function chart(el_, t0, t1, series, fmt) {
    const W = 420, H = 150, L = 52, R = 10, T = 10, B = 22;
    const all = series.flatMap((s) => s.points.map((p) => p[1])).filter((v) => v !== null && v !== undefined);
    const ymax = niceMax(Math.max(0, ...all));
    const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
    const y = (v) => T + (1 - v / ymax) * (H - T - B);
    el_.setAttribute("viewBox", `0 0 ${W} ${H}`);
    const parts = [];
    for (const f of [0, 0.5, 1]) {
      const v = ymax * f;
      parts.push(svg("line", { class: "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
      const label = svg("text", { class: "axis", x: L - 6, y: y(v) + 3, "text-anchor": "end" });
      label.textContent = fmt(v);
      parts.push(label);
    }
    for (const [t, text] of [[t0, "−10 min"], [t0 + 5 * 60000, "−5 min"], [t1, "now"]]) {
      const label = svg("text", { class: "axis", x: x(t), y: H - 6, "text-anchor": t === t0 ? "start" : t === t1 ? "end" : "middle" });
      label.textContent = text;
      parts.push(label);
    }
    for (const s of series) {
      const pts = s.points.filter((p) => p[0] >= t0 && p[0] <= t1);
      // Runs of points without a gap.
      const runs = [];
      let run = [];
      for (const [t, v] of pts) {
        if (v === null || v === undefined) {
          if (run.length) runs.push(run);
          run = [];
        } else {
          run.push([x(t), y(v)]);
        }
      }
      if (run.length) runs.push(run);
      for (const r of runs) {
        const d = r.map((p, i) => (i ? "L" : "M") + p[0].toFixed(1) + " " + p[1].toFixed(1)).join(" ");
        if (s.area && r.length > 1) {
          parts.push(svg("path", { class: "area " + s.cls, d: d + ` L${r[r.length - 1][0].toFixed(1)} ${y(0)} L${r[0][0].toFixed(1)} ${y(0)} Z` }));
        }
        parts.push(svg("path", { class: "line " + s.cls, d: r.length > 1 ? d : d + " h1" }));
      }
    }
    el_.replaceChildren(...parts);
  }

  // ---- Gallery ----

  // The collection the gallery views and changes: one of those the key may
  // see (GET /v1/collections), "default" first. The default collection is
  // offered even before anything is enrolled in it (a new deployment
  // enrols there), unless the key may not use it.
  const DEFAULT = "default";
  let chosen = DEFAULT;
  let defaultForbidden = false;
  const enc = (p) => encodeURIComponent(p);
  const collectionPath = (c, ...parts) => "/v1/collections/" + enc(c) + parts.map((p) => "/" + enc(p)).join("");

  let persons = [];
  let thumbObserver = null;
  let galleryLoads = 0;

  // showCollections fills the picker (and the enrol form's suggestions)
  // with names. The chosen collection stays offered even when the listing
  // does not name it: one just made by an enrolment the listing does not
  // show yet, or one whose last face was just deleted.
  function showCollections(names) {
    const set = new Set(names);
    if (!defaultForbidden) set.add(DEFAULT);
    if (chosen === DEFAULT && defaultForbidden) chosen = [...set].sort()[0] || DEFAULT;
    set.add(chosen);
    const list = [...set].sort((a, b) => (a === DEFAULT ? -1 : b === DEFAULT ? 1 : a.localeCompare(b)));
    $("collection").replaceChildren(...list.map((c) => el("option", { value: c, selected: c === chosen, text: c })));
    $("collection").value = chosen;
    $("collection-names").replaceChildren(...list.map((c) => el("option", { value: c })));
    if (!$("enrol-collection").value) $("enrol-collection").value = chosen;
  }

  // allPages returns the items (data[field]) of every page of a listing,
  // following "next".
  async function allPages(path, field) {
    const out = [];
    let after = "";
    for (;;) {
      const r = await api(path + "?limit=1000" + (after ? "&after=" + enc(after) : ""));
      out.push(...r.data[field]);
      if (!r.data.next) return out;
      after = r.data.next;
    }
  }

  // allPersons lists a collection's persons; a collection with no face
  // yet has none.
  async function allPersons(c) {
    try {
      return await allPages(collectionPath(c, "persons"), "persons");
    } catch (err) {
      if (err.status === 404) return [];
      throw err;
    }
  }

  async function loadGallery() {
    const box = $("persons");
    const load = ++galleryLoads;
    try {
      const cs = (await api("/v1/collections")).data.collections;
      if (load !== galleryLoads) return;
      showCollections(cs.map((c) => c.name));
      const c = chosen;
      let ps;
      try {
        ps = await allPersons(c);
      } catch (err) {
        if (err.status !== 403 || c !== DEFAULT) throw err;
        // This key may not use the default collection: offer only those
        // it may use.
        defaultForbidden = true;
        if (cs.length === 0) throw new APIError(403, "this key may use none of the collections there are yet; enrol in one it may use");
        if (load === galleryLoads) loadGallery();
        return;
      }
      if (load !== galleryLoads || c !== chosen) return;
      persons = ps;
      const faces = ps.reduce((n, p) => n + p.faces, 0);
      $("gallery-count").textContent = ps.length + " persons, " + faces + " faces in collection " + c;
      box.dataset.collection = c;
      renderPersons();
      box.dataset.loaded = String(Date.now());
    } catch (err) {
      if (load === galleryLoads) box.replaceChildren(el("p", { class: "error", text: "The gallery could not be read: " + err.message }));
    }
  }

  // choose shows collection c.
  function choose(c) {
    chosen = c;
    $("enrol-collection").value = c;
    if ($("persons").dataset.collection !== c) {
      delete $("persons").dataset.loaded;
      $("persons").replaceChildren();
      $("gallery-count").textContent = "";
    }
    loadGallery();
  }

  function renderPersons() {
    const c = $("persons").dataset.collection;
    const filter = $("filter").value.trim().toLowerCase();
    if (thumbObserver) thumbObserver.disconnect();
    thumbObserver = new IntersectionObserver((entries) => {
      for (const e of entries) {
        if (e.isIntersecting) {
          thumbObserver.unobserve(e.target);
          loadFaces(e.target);
        }
      }
    }, { rootMargin: "200px" });
    const cards = persons.filter((p) => !filter || p.name.toLowerCase().includes(filter)).map((p) => {
      const del = armedButton("delete person", async () => {
        await api(collectionPath(c, "persons", p.name) + purgeQuery(), { method: "DELETE" });
        loadGallery();
      });
      const card = el("article", { class: "person", "data-person": p.name, "data-collection": c },
        el("header", {}, el("h3", { text: p.name, title: p.name }), el("p", { class: "note", text: p.faces + (p.faces === 1 ? " face" : " faces") }), del),
        el("div", { class: "faces" }));
      thumbObserver.observe(card);
      return card;
    });
    $("persons").replaceChildren(...cards);
    if (cards.length === 0) $("persons").append(el("p", { class: "note", text: persons.length ? "No person matches the filter." : "Nobody is enrolled yet: enrol someone above." }));
  }

  const purgeQuery = () => ($("purge").checked ? "?purge=1" : "");

  // armedButton asks for a second click before it acts.
  function armedButton(label, act) {
    const b = el("button", { type: "button", class: "danger", text: label });
    let timer = null;
    b.addEventListener("click", async () => {
      if (!b.classList.contains("armed")) {
        b.classList.add("armed");
        b.textContent = "sure?";
        timer = setTimeout(() => {
          b.classList.remove("armed");
          b.textContent = label;
        }, 4000);
        return;
      }
      clearTimeout(timer);
      b.disabled = true;
      try {
        await act();
      } catch (err) {
        b.disabled = false;
        b.classList.remove("armed");
        b.textContent = label;
        $("enrol-result").textContent = "Could not delete: " + err.message;
      }
    });
    return b;
  }

  async function loadFaces(card) {
    const name = card.dataset.person;
    const c = card.dataset.collection;
    const faces = card.querySelector(".faces");
    let data;
    try {
      data = { faces: await allPages(collectionPath(c, "persons", name, "faces"), "faces") };
    } catch (err) {
      faces.replaceChildren(el("p", { class: "error", text: err.message }));
      return;
    }
    faces.replaceChildren(...data.faces.map((f) => {
      const del = armedButton("×", async () => {
        await api(collectionPath(c, "persons", name, "faces", f.id) + purgeQuery(), { method: "DELETE" });
        loadGallery();
      });
      del.title = "delete this face";
      const label = f.source || f.id.slice(0, 8);
      const pic = f.thumbnail ? el("img", { alt: name + ", " + label }) : el("div", { class: "placeholder", text: "no picture" });
      if (f.thumbnail) thumbnail(pic, f.thumbnail);
      return el("figure", { class: "face", "data-face": f.id, title: (f.source || f.id) + (f.enrolled ? ", enrolled " + new Date(f.enrolled).toLocaleString() : "") },
        pic, el("figcaption", { text: label }), del);
    }));
    card.dataset.faces = String(data.faces.length);
  }

  // Thumbnails are fetched with the key (an <img src> could not send it)
  // and shown from blob: URLs, a few at a time.
  const thumbQueue = [];
  let thumbsLoading = 0;
  function thumbnail(img, path) {
    thumbQueue.push([img, path]);
    pumpThumbs();
  }
  function pumpThumbs() {
    while (thumbsLoading < 6 && thumbQueue.length) {
      const [img, path] = thumbQueue.shift();
      thumbsLoading++;
      api(path, { raw: true })
        .then((res) => res.blob())
        .then((b) => {
          img.src = URL.createObjectURL(b);
          img.addEventListener("load", () => URL.revokeObjectURL(img.src), { once: true });
        })
        .catch(() => img.replaceWith(el("div", { class: "placeholder", text: "no picture" })))
        .finally(() => {
          thumbsLoading--;
          pumpThumbs();
        });
    }
  }

  let enrolFiles = [];
  function setEnrolFiles(files) {
    enrolFiles = [...files].filter((f) => f.type.startsWith("image/") || f.type === "");
    $("enrol-files-label").textContent = enrolFiles.length
      ? enrolFiles.length + (enrolFiles.length === 1 ? " photo: " : " photos: ") + enrolFiles.map((f) => f.name).join(", ")
      : "Drop photos here, or";
  }

  // enrol sends the chosen photos as the named person to the collection
  // the form names (the one shown, or a new name, which starts a
  // collection), then shows that collection.
  async function enrol(ev) {
    ev.preventDefault();
    const name = $("enrol-person").value.trim();
    const c = $("enrol-collection").value.trim() || chosen;
    const out = $("enrol-result");
    if (!name || enrolFiles.length === 0) {
      out.textContent = "Give the person's name and at least one photo.";
      return;
    }
    const body = new FormData();
    for (const f of enrolFiles) body.append("image", f, f.name);
    out.textContent = "Enrolling " + enrolFiles.length + (enrolFiles.length === 1 ? " photo" : " photos") + " as " + name +
      (c === DEFAULT ? "" : " in " + c) + "…";
    try {
      const r = await api(collectionPath(c, "persons", name, "faces") + "?wait=60s", { method: "POST", body });
      const results = [...r.data.results];
      for (const p of r.data.pending || []) results.push(await wait({ status: 202, data: p }));
      const done = results.filter((x) => x.status === "done");
      const failed = results.filter((x) => x.status !== "done");
      out.textContent = "Enrolled " + done.length + (done.length === 1 ? " face" : " faces") + " as " + name +
        (c === DEFAULT ? "" : " in " + c) + "." +
        (failed.length ? " Not enrolled: " + failed.map((x) => x.name + ": " + x.error).join("; ") : "");
      out.dataset.done = String(done.length);
      setEnrolFiles([]);
      $("enrol-files").value = "";
      choose(c);
    } catch (err) {
      out.textContent = "Enrolment refused: " + err.message;
    }
  }

  // ---- Try ----

  let tryFile = null;

  async function tryPhoto(file) {
    tryFile = file;
    const answer = $("try-answer");
    const canvas = $("try-canvas");
    delete canvas.dataset.drawn;
    answer.textContent = "Recognising " + file.name + "…";
    const q = new URLSearchParams({ wait: "60s" });
    if ($("try-landmarks").checked) q.set("landmarks", "1");
    if ($("try-nearest").checked) q.set("nearest", "1");
    const body = new FormData();
    body.append("inputFile", file, file.name);
    let res;
    try {
      res = await wait(await api("/v1/recognitions?" + q, { method: "POST", body }));
    } catch (err) {
      answer.textContent = "Refused: " + err.message;
      return;
    }
    $("try-json").textContent = JSON.stringify(res, null, 2);
    $("try-details").hidden = false;
    if (res.status !== "done") {
      answer.textContent = "Failed: " + res.error;
      $("try-faces").hidden = true;
      return;
    }
    const faces = res.faces || [];
    answer.textContent = faces.length === 0 ? "No face found."
      : faces.length + (faces.length === 1 ? " face: " : " faces: ") + faces.map((f) => f.name).join(", ");
    await draw(file, res);
    fillTable($("try-faces"), faces, "", (f) => {
      const i = faces.indexOf(f) + 1;
      const b = f.box;
      return [
        el("td", { class: "num", text: String(i) }),
        el("td", { text: f.name }),
        el("td", { class: "num", text: f.distance >= 0 ? f.distance.toFixed(3) : "–" }),
        el("td", { text: f.quality || "–" }),
        el("td", { class: "num", text: f.score.toFixed(2) }),
        el("td", { class: "num", text: [b.x, b.y, b.w, b.h].map((v) => Math.round(v)).join(", ") }),
      ];
    });
    $("try-faces").hidden = faces.length === 0;
  }

  // The landmark scheme's outlines (iBUG 300-W): open and closed runs.
  const OUTLINES = [[0, 16, false], [17, 21, false], [22, 26, false], [27, 30, false], [31, 35, false],
    [36, 41, true], [42, 47, true], [48, 59, true], [60, 67, true]];

  async function draw(file, res) {
    const canvas = $("try-canvas");
    const img = new Image();
    const url = URL.createObjectURL(file);
    img.src = url;
    try {
      await img.decode();
    } finally {
      URL.revokeObjectURL(url);
    }
    const w = res.width || img.naturalWidth;
    const h = res.height || img.naturalHeight;
    // Fit the width and 640 pixels of height; a small photo (the course's
    // are 160 pixels) is enlarged, at most 4 times, so its faces can be seen.
    const room = Math.max(320, canvas.parentElement.clientWidth || 960);
    const scale = Math.min(room / w, 640 / h, Math.max(1, Math.min(4, 480 / Math.max(w, h))));
    canvas.width = Math.round(w * scale);
    canvas.height = Math.round(h * scale);
    const ctx = canvas.getContext("2d");
    ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    const line = Math.max(2, Math.round(canvas.width / 400));
    ctx.font = `600 ${Math.max(12, Math.round(canvas.width / 60))}px system-ui, sans-serif`;
    (res.faces || []).forEach((f, i) => {
      // Named: green; unknown: amber; not matched (low quality): grey.
      const color = f.distance < 0 ? "#94a3b8" : f.name !== "unknown" ? "#22c55e" : "#f59e0b";
      const b = f.box;
      ctx.lineWidth = line;
      ctx.strokeStyle = color;
      ctx.strokeRect(b.x * scale, b.y * scale, b.w * scale, b.h * scale);
      const label = (i + 1) + " " + f.name + (f.distance >= 0 ? " " + f.distance.toFixed(2) : "");
      const tw = ctx.measureText(label).width + 8;
      const th = parseInt(ctx.font.split(" ")[1], 10) + 6;
      const ly = b.y * scale > th ? b.y * scale - th : b.y * scale + b.h * scale;
      ctx.fillStyle = color;
      ctx.fillRect(b.x * scale - line / 2, ly, tw, th);
      ctx.fillStyle = "#111";
      ctx.fillText(label, b.x * scale + 4 - line / 2, ly + th - 5);
      const pts = f.landmarks || [];
      if (pts.length === 68) {
        ctx.strokeStyle = "rgba(56, 189, 248, 0.9)";
        ctx.fillStyle = "#38bdf8";
        ctx.lineWidth = Math.max(1, line / 2);
        for (const [a, z, closed] of OUTLINES) {
          ctx.beginPath();
          for (let k = a; k <= z; k++) ctx[k === a ? "moveTo" : "lineTo"](pts[k].x * scale, pts[k].y * scale);
          if (closed) ctx.closePath();
          ctx.stroke();
        }
        const r = Math.max(1.5, line * 0.75);
        for (const p of pts) {
          ctx.beginPath();
          ctx.arc(p.x * scale, p.y * scale, r, 0, 2 * Math.PI);
          ctx.fill();
        }
      }
    });
    canvas.dataset.drawn = String((res.faces || []).length);
    canvas.dataset.landmarks = String((res.faces || []).filter((f) => (f.landmarks || []).length === 68).length);
  }

  // ---- wiring ----

  function dropZone(zone, onFiles) {
    zone.addEventListener("dragover", (e) => {
      e.preventDefault();
      zone.classList.add("over");
    });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (e) => {
      e.preventDefault();
      zone.classList.remove("over");
      if (e.dataTransfer && e.dataTransfer.files.length) onFiles(e.dataTransfer.files);
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("signin").addEventListener("submit", (e) => {
      e.preventDefault();
      signIn($("key").value.trim());
    });
    $("signout").addEventListener("click", () => signOut(""));
    window.addEventListener("hashchange", () => showTab());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && apiKey && currentTab() === "live") startPolling();
    });
    $("filter").addEventListener("input", renderPersons);
    $("collection").addEventListener("change", (e) => {
      $("enrol-result").textContent = "";
      choose(e.target.value);
    });
    $("enrol").addEventListener("submit", enrol);
    $("enrol-files").addEventListener("change", (e) => setEnrolFiles(e.target.files));
    dropZone($("enrol-drop"), setEnrolFiles);
    $("try-file").addEventListener("change", (e) => e.target.files[0] && tryPhoto(e.target.files[0]));
    dropZone($("try-drop"), (files) => tryPhoto(files[0]));
    for (const id of ["try-landmarks", "try-nearest"]) {
      $(id).addEventListener("change", () => tryFile && tryPhoto(tryFile));
    }
    if (apiKey) signIn(apiKey);
    else signOut("");
  });
})();
