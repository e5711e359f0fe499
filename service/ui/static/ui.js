// casematch /ui: calls the /v1 API from the browser with the key the doctor entered.
// The key lives in sessionStorage (this tab only) and goes only to this origin (see the page's CSP).
// Every string from the API reaches the page through textContent or text nodes, never as HTML.
"use strict";

(() => {
  const KEY_STORAGE = "casematch.apiKey";
  const LANG_STORAGE = "casematch.lang";
  const LIMITS = { limit_doctors: 5, limit_similar: 5 };
  const URGENCY_ICONS = { emergent: "▲", urgent: "◆", routine: "●" };

  const config = JSON.parse(document.getElementById("ui-config").textContent);
  const $ = (id) => document.getElementById(id);
  const state = {
    lang: initialLanguage(),
    status: { kind: "idle" },
    result: null,
    caseRecord: null,
    editingKey: false,
    pending: null, // the action that waits for a key
    ticket: 0, // only the newest request may update the page
  };

  // --- storage: sessionStorage can be disabled; the page then simply forgets ----------------------
  function stored(name) {
    try {
      return sessionStorage.getItem(name);
    } catch {
      return null;
    }
  }

  function store(name, value) {
    try {
      if (value === null) sessionStorage.removeItem(name);
      else sessionStorage.setItem(name, value);
    } catch {
      /* not kept: asked again next time */
    }
  }

  function initialLanguage() {
    const asked = new URLSearchParams(location.search).get("lang");
    const chosen = asked || stored(LANG_STORAGE) || config.lang;
    return chosen === "es" ? "es" : "en";
  }

  // --- text ---------------------------------------------------------------------------------------
  function t(key, params = {}) {
    const text = config.strings[state.lang][key] ?? config.strings.en[key] ?? key;
    return text.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ""));
  }

  const locale = () => (state.lang === "es" ? "es-ES" : "en-GB");

  function percent(p) {
    // Rounded to 0 % or 100 % a probability would read as certain: say "< 0.1 %" or "> 99.9 %".
    const format = new Intl.NumberFormat(locale(), { style: "percent", maximumFractionDigits: 1 });
    if (p < 0.0005) return `< ${format.format(0.001)}`;
    if (p >= 0.9995) return `> ${format.format(0.999)}`;
    return format.format(p);
  }

  function decimal(x, digits) {
    return new Intl.NumberFormat(locale(), {
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
    }).format(x);
  }

  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    node.append(...children.filter((child) => child !== null && child !== undefined));
    return node;
  }

  const escapeRegExp = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const folded = (text) => text.normalize("NFD").replace(/\p{M}/gu, "").toLowerCase();

  /** `text` with every whole-word occurrence of `terms` wrapped in <mark>, as DOM nodes. */
  function highlighted(text, terms) {
    const fragment = document.createDocumentFragment();
    const words = [...new Set(terms.filter(Boolean))].sort((a, b) => b.length - a.length);
    if (!words.length) {
      fragment.append(text);
      return fragment;
    }
    const pattern = new RegExp(
      `(?<![\\p{L}\\p{N}])(?:${words.map(escapeRegExp).join("|")})(?![\\p{L}\\p{N}])`,
      "giu",
    );
    let last = 0;
    for (const match of text.matchAll(pattern)) {
      fragment.append(text.slice(last, match.index), el("mark", {}, match[0]));
      last = match.index + match[0].length;
    }
    fragment.append(text.slice(last));
    return fragment;
  }

  function languageBadge(code) {
    const name = config.strings[state.lang][`language_${code}`] || code;
    return el("abbr", { class: "badge lang-badge", title: name }, String(code || "?").toUpperCase());
  }

  // --- the API --------------------------------------------------------------------------------------
  class UiError extends Error {
    constructor(key, params = {}, details = []) {
      super(key);
      this.key = key;
      this.params = params;
      this.details = details;
    }
  }

  async function callApi(path, { method = "GET", body = null, caseId = "" } = {}) {
    const key = stored(KEY_STORAGE);
    if (!key) throw new UiError("err_key_missing");
    const headers = { Accept: "application/json", Authorization: `Bearer ${key}` };
    if (body !== null) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(`${config.apiRoot}${path}`, {
        method,
        headers,
        body: body === null ? null : JSON.stringify(body),
        credentials: "omit",
        cache: "no-store",
        referrerPolicy: "no-referrer",
      });
    } catch {
      throw new UiError("err_network");
    }
    if (response.ok) return response.json();
    const problem = await response.json().catch(() => ({}));
    switch (response.status) {
      case 401:
        throw new UiError("err_401");
      case 403:
        throw new UiError("err_403");
      case 429:
        throw new UiError("err_429", { seconds: response.headers.get("Retry-After") || "60" });
      case 404:
        throw new UiError("err_404", { id: caseId });
      case 400:
      case 413:
      case 422: {
        const fields = (problem.errors || []).map((e) => `${e.field}: ${e.message}`);
        throw new UiError("err_422", {}, fields.length ? fields : [problem.detail || ""]);
      }
      default:
        throw new UiError("err_server", {
          status: response.status,
          request_id: response.headers.get("x-request-id") || "-",
        });
    }
  }

  /** Run one request: loading state, then results or a clear message; never a blank panel. */
  async function run(action) {
    const ticket = ++state.ticket;
    state.pending = null;
    state.status = { kind: "loading", key: action.loadingKey };
    $("results").setAttribute("aria-busy", "true");
    renderStatus();
    try {
      const value = await action.task();
      if (ticket !== state.ticket) return;
      action.done(value);
      const r = state.result;
      state.status = {
        kind: "done",
        params: { specialties: r.specialties.length, doctors: r.doctors.length, similar: r.similar_cases.length },
      };
    } catch (error) {
      if (ticket !== state.ticket) return;
      const failure = error instanceof UiError ? error : new UiError("err_server", { status: "-", request_id: "-" });
      state.status = { kind: "error", key: failure.key, params: failure.params, details: failure.details };
      state.result = null;
      if (action.failed) action.failed(failure);
      if (["err_key_missing", "err_401", "err_403"].includes(failure.key)) {
        state.editingKey = true;
        renderKey();
      }
      if (failure.key === "err_key_missing") {
        state.pending = action;
        $("api-key").focus();
      }
    } finally {
      if (ticket === state.ticket) {
        $("results").setAttribute("aria-busy", "false");
        renderStatus();
        renderResult();
      }
    }
  }

  // --- rendering ----------------------------------------------------------------------------------
  function renderStatus() {
    const box = $("status");
    const s = state.status;
    // Nothing visible to say: keep the box out of the layout but still announced when "done".
    box.classList.toggle("visually-hidden", s.kind === "done" || (s.kind === "idle" && config.page === "case"));
    if (s.kind === "idle") {
      box.replaceChildren(...(config.page === "route" ? [el("p", { class: "empty-state" }, t("results_empty"))] : []));
    } else if (s.kind === "loading") {
      box.replaceChildren(el("p", { class: "alert alert-info" }, t(s.key)));
    } else if (s.kind === "error") {
      const alert = el("div", { class: "alert alert-error", role: "alert", "data-error": s.key }, el("p", {}, t(s.key, s.params)));
      const details = (s.details || []).filter(Boolean);
      if (details.length) alert.append(el("ul", {}, ...details.map((d) => el("li", {}, d))));
      box.replaceChildren(alert);
    } else {
      box.replaceChildren(el("p", {}, t("results_ready", s.params)));
    }
  }

  function renderResult() {
    const r = state.result;
    $("result-body").hidden = !r;
    if (!r) return;
    renderSummary(r);
    renderSpecialties(r.specialties);
    renderDoctors(r.doctors);
    renderSimilar(r.similar_cases);
  }

  function fact(label, value, detail) {
    return [
      el("dt", {}, label),
      el("dd", {}, value, detail ? el("span", { class: "fact-detail" }, detail) : null),
    ];
  }

  function renderSummary(r) {
    const level = r.urgency && r.urgency.level in URGENCY_ICONS ? r.urgency.level : "routine";
    const urgency = el(
      "span",
      { class: `pill urgency-${level}`, "data-urgency": level },
      el("span", { class: "icon", "aria-hidden": "true" }, URGENCY_ICONS[level]),
      el("strong", {}, t(`urgency_${level}`)),
    );
    // `broadcast` is the service's rare/novel decision; `novelty` is only its score.
    const rarity = r.broadcast
      ? el(
          "span",
          { class: "pill rare", "data-rare": "true" },
          el("span", { class: "icon", "aria-hidden": "true" }, "★"),
          el("strong", {}, t("rare")),
        )
      : el("span", { class: "pill neutral", "data-rare": "false" }, t("not_rare"));
    const novelty = t("novelty", { score: decimal(r.novelty, 2) });
    $("summary").replaceChildren(
      ...fact(t("urgency"), urgency, t("p_emergent", { score: percent(r.urgency.score) })),
      ...fact(t("rarity"), rarity, r.broadcast ? `${novelty} · ${t("rare_detail")}` : novelty),
      ...fact(t("case_language"), languageBadge(r.language), null),
    );
    $("model").textContent = r.model ? t("model", r.model) : "";
  }

  function renderSpecialties(specialties) {
    const rows = specialties.map((s) => {
      const names = config.specialties[s.code];
      const fill = el("span", { class: "fill" });
      fill.style.width = `${Math.max(0, Math.min(1, s.probability)) * 100}%`;
      return el(
        "li",
        { "data-code": s.code },
        el("span", { class: "spec-name" }, names ? names[state.lang] : s.name),
        el("span", { class: "pct" }, percent(s.probability)),
        el("span", { class: "bar", "aria-hidden": "true" }, fill),
      );
    });
    $("specialties").replaceChildren(...rows);
  }

  function renderDoctors(doctors) {
    if (!doctors.length) {
      $("doctors").replaceChildren(el("li", { class: "muted" }, t("no_doctors")));
      return;
    }
    const rows = doctors.map((d) =>
      el(
        "li",
        { "data-doctor-id": d.doctor_id },
        el(
          "div",
          { class: "doctor-head" },
          el("span", { class: "doctor-id" }, d.doctor_id),
          el("span", { class: "score" }, t("doctor_match", { score: decimal(d.score, 2) })),
        ),
        reasonList(d),
      ),
    );
    $("doctors").replaceChildren(...rows);
  }

  // Reasons come as codes with parameters, rendered in the page's language; one this page does not
  // know (a newer service), or a service that sends only sentences, shows the English sentence.
  function reasonList(d) {
    const english = d.reasons || [];
    const codes = Array.isArray(d.reason_codes) ? d.reason_codes : [];
    if (codes.length) {
      const items = codes.map((r, i) => {
        const text = reasonText(r);
        return text
          ? el("li", { "data-reason": r.code }, text)
          : el("li", { "data-reason": r.code, lang: "en" }, english[i] || r.code);
      });
      return el("ul", { class: "reasons", lang: state.lang }, ...items);
    }
    if (english.length) {
      return el("ul", { class: "reasons", lang: "en" }, ...english.map((reason) => el("li", {}, reason)));
    }
    return null;
  }

  function reasonText(r) {
    const p = r.params || {};
    const one = r.code === "answered_similar" && Number(p.count) === 1;
    const key = one ? "reason_answered_similar_one" : `reason_${r.code}`;
    if (!(key in config.strings[state.lang])) return null;
    const specialty = (code) => {
      const names = config.specialties[code];
      return names ? names[state.lang].toLowerCase() : String(code ?? "");
    };
    const language = (code) => {
      const name = config.strings[state.lang][`language_${code}`] || String(code ?? "");
      return state.lang === "es" ? name.toLowerCase() : name; // "lee inglés", "reads English"
    };
    const minutes = Number(p.minutes);
    const hours = new Intl.NumberFormat(locale(), { minimumFractionDigits: 1, maximumFractionDigits: 1 });
    return t(key, {
      count: p.count,
      specialties: (p.specialties || []).map(specialty).join(", "),
      specialty: specialty(p.specialty),
      language: language(p.language),
      duration: minutes < 60 ? `${minutes} min` : `${hours.format(minutes / 60)} h`,
    });
  }

  function renderSimilar(cases) {
    if (!cases.length) {
      $("similar").replaceChildren(el("li", { class: "muted" }, t("no_similar")));
      return;
    }
    $("similar").replaceChildren(...cases.map(similarCard));
  }

  function similarCard(c) {
    const pairs = Array.isArray(c.shared_terms) ? c.shared_terms : null;
    const terms = (pairs || []).map((pair) => pair.term);
    const href = `${config.apiRoot}/ui/cases/${encodeURIComponent(c.case_id)}`;
    const card = el(
      "li",
      { class: "similar", "data-case-id": c.case_id, "data-language": c.language },
      el(
        "div",
        { class: "similar-head" },
        el("h4", { class: "similar-title", lang: c.language }, el("a", { href }, highlighted(c.title, terms))),
        el(
          "span",
          { class: "badges" },
          el("span", { class: "score", title: t("similarity_hint") }, t("similarity", { score: decimal(c.score, 3) })),
          languageBadge(c.language),
        ),
      ),
    );
    if (c.diagnosis) {
      card.append(
        el(
          "p",
          { class: "diagnosis" },
          el("span", { class: "label" }, `${t("diagnosis")}:`),
          el("strong", { class: "diagnosis-text", lang: c.language }, c.diagnosis),
        ),
      );
    }
    if (c.excerpt) card.append(el("p", { class: "excerpt", lang: c.language }, highlighted(c.excerpt, terms)));
    if (pairs) card.append(sharedTerms(pairs));
    return card;
  }

  function sharedTerms(pairs) {
    if (!pairs.length) return el("p", { class: "hint" }, t("no_shared_terms"));
    const items = pairs.map((pair) => {
      const same = folded(pair.query_term) === folded(pair.term);
      return el("li", {}, el("span", { class: "term" }, same ? pair.term : `${pair.query_term} ↔ ${pair.term}`));
    });
    return el(
      "div",
      { class: "terms-row" },
      el("ul", { class: "terms", "aria-label": t("shared_terms") }, el("li", { class: "label", "aria-hidden": "true" }, `${t("shared_terms")}:`), ...items),
    );
  }

  function renderCase() {
    const c = state.caseRecord;
    if (config.page !== "case" || !c) return;
    $("case").hidden = false;
    const title = $("stored-title");
    title.lang = c.language;
    title.textContent = c.title;
    const resolved = c.resolved
      ? el(
          "span",
          { class: "pill resolved" },
          el("strong", {}, t("case_resolved")),
          c.diagnosis ? el("span", { lang: c.language }, ` · ${c.diagnosis}`) : null,
        )
      : el("span", { class: "pill neutral" }, t("case_unresolved"));
    $("stored-meta").replaceChildren(languageBadge(c.language), resolved);
    const text = $("stored-text");
    text.lang = c.language;
    text.textContent = c.text;
    $("stored-redactions").textContent = redactionSummary(c.redactions || {});
  }

  // "Removed before storing: 2 × name, 1 × phone number." (kinds and counts only: never the text)
  function redactionSummary(redactions) {
    const parts = Object.entries(redactions).map(([kind, count]) => `${count} × ${t(`kind_${kind}`)}`);
    return parts.length ? t("redactions", { list: parts.join(", ") }) : t("no_redactions");
  }

  function renderKey() {
    const hasKey = Boolean(stored(KEY_STORAGE));
    $("key-form").hidden = hasKey && !state.editingKey;
    $("key-set").hidden = !hasKey || state.editingKey;
  }

  function applyLanguage() {
    document.documentElement.lang = state.lang;
    for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
    const title = document.querySelector("title[data-title]");
    document.title = `${t(title.dataset.title)} · casematch`;
    for (const button of document.querySelectorAll(".lang-toggle button")) {
      button.setAttribute("aria-pressed", String(button.dataset.lang === state.lang));
    }
    for (const button of document.querySelectorAll("[data-example]")) {
      button.textContent = config.examples[Number(button.dataset.example)][`label_${state.lang}`];
    }
    renderStatus();
    renderResult();
    renderCase();
  }

  // --- actions ------------------------------------------------------------------------------------
  function routePost() {
    const post = { title: $("case-title").value.trim(), text: $("case-text").value.trim() };
    if ($("case-language").value) post.language = $("case-language").value;
    return run({
      loadingKey: "loading",
      task: () => callApi("/v1/route", { method: "POST", body: { case: post, ...LIMITS } }),
      done: (result) => {
        state.result = result;
      },
    });
  }

  function loadStoredCase() {
    const id = config.caseId;
    return run({
      loadingKey: "loading_case",
      task: () =>
        Promise.all([
          callApi(`/v1/cases/${encodeURIComponent(id)}`, { caseId: id }),
          callApi("/v1/route", { method: "POST", body: { case_id: id, ...LIMITS }, caseId: id }),
        ]),
      done: ([record, result]) => {
        state.caseRecord = record;
        state.result = result;
        renderCase();
      },
    });
  }

  function bind() {
    for (const button of document.querySelectorAll(".lang-toggle button")) {
      button.addEventListener("click", () => {
        state.lang = button.dataset.lang === "es" ? "es" : "en";
        store(LANG_STORAGE, state.lang);
        applyLanguage();
      });
    }
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const key = $("api-key").value.trim();
      if (!key) return;
      store(KEY_STORAGE, key);
      $("api-key").value = "";
      state.editingKey = false;
      renderKey();
      const pending = state.pending;
      if (pending) run(pending);
      if (config.page === "route") $("case-title").focus();
      else $("key-change").focus();
    });
    $("key-change").addEventListener("click", () => {
      state.editingKey = true;
      renderKey();
      $("api-key").focus();
    });
    $("key-forget").addEventListener("click", () => {
      store(KEY_STORAGE, null);
      state.editingKey = false;
      renderKey();
      $("api-key").focus();
    });
    if (config.page === "route") {
      $("case-form").addEventListener("submit", (event) => {
        event.preventDefault();
        routePost();
      });
      for (const button of document.querySelectorAll("[data-example]")) {
        button.addEventListener("click", () => {
          const example = config.examples[Number(button.dataset.example)];
          $("case-title").value = example.title;
          $("case-text").value = example.text;
          $("case-language").value = example.language;
          $("case-form").requestSubmit();
        });
      }
    }
  }

  bind();
  renderKey();
  applyLanguage();
  if (config.page === "case") loadStoredCase();
})();
