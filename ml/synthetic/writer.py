"""Compose a case post (title and body) from a condition's presentation, as a doctor would write it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.synthetic import regional
from ml.synthetic.identifiers import PlantedIdentifiers, Span
from ml.synthetic.knowledge import Condition, Presentation

MIN_WORDS = 60
MAX_WORDS = 250
_TARGET_MIN_WORDS = 72  # before shorthand shrinks the text
_TARGET_MAX_WORDS = 225  # leaves room for a planted identifier sentence


@dataclass(frozen=True, slots=True)
class AuthorStyle:
    """How one doctor writes: a stable trait of the author, not of the case."""

    locale: str  # "en" or "es-ES" / "es-MX"
    spelling: str  # "us" or "uk" (English authors)
    shorthand_rate: float
    typo_rate: float
    drops_accents: bool
    asks_questions: float  # chance of ending with a question

    @property
    def language(self) -> str:
        return self.locale[:2]


@dataclass(frozen=True, slots=True)
class Patient:
    age: float  # years
    sex: str  # "M" or "F"


@dataclass(frozen=True)
class WrittenCase:
    title: str
    body: str
    states_diagnosis: bool
    body_spans: tuple[Span, ...]  # where the planted identifiers are


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def _join(items: list[str], language: str) -> str:
    if len(items) == 1:
        return items[0]
    conjunction = " y " if language == "es" else " and "
    return ", ".join(items[:-1]) + conjunction + items[-1]


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[0].upper() + text[1:] if text else text
    return text if text.endswith(("?", ".", "!")) else text + "."


def _sample(items: list[str], minimum: int, rng: np.random.Generator) -> list[str]:
    """The first item (usually the key clue) and a random ordered subset of the rest."""
    if len(items) == 1:
        return list(items)
    extra = int(rng.integers(minimum - 1, len(items)))  # the schema guarantees minimum <= len(items)
    kept = sorted(rng.choice(np.arange(1, len(items)), size=extra, replace=False).tolist())
    return [items[0]] + [items[i] for i in kept]


# --- how patients are described ------------------------------------------------------------------


def _age_in_units(age: float) -> tuple[str, int]:
    """How doctors count a patient's age: days for newborns, months under two, then years."""
    if age < 1 / 12:
        return "days", max(1, round(age * 365))
    if age < 2:
        return "months", max(1, round(age * 12))
    return "years", int(age)


def describe_patient_en(patient: Patient, rng: np.random.Generator) -> tuple[str, str]:
    """(long form for the body, short form for the title)."""
    male = patient.sex == "M"
    unit, count = _age_in_units(patient.age)
    if unit == "days":
        noun = "baby boy" if male else "baby girl"
        return f"{count}-day-old {noun}", f"{count}d old {noun}"
    if unit == "months":
        return f"{count}-month-old {'boy' if male else 'girl'}", f"{count}mo {'M' if male else 'F'}"
    years = count
    if years < 18:
        noun = "boy" if male else "girl"
    else:
        noun = _pick(rng, ("man", "male") if male else ("woman", "female"))
    return f"{years}-year-old {noun}", _pick(
        rng, (f"{years}yo {'M' if male else 'F'}", f"{years}{'M' if male else 'F'}")
    )


def describe_patient_es(patient: Patient, locale: str, rng: np.random.Generator) -> tuple[str, str]:
    male = patient.sex == "M"
    unit, count = _age_in_units(patient.age)
    if unit == "days":
        noun = "recién nacido" if male else "recién nacida"
        return f"{noun} de {count} días", f"RN de {count} días"
    if unit == "months":
        noun = "lactante varón" if male else "lactante mujer"
        return f"{noun} de {count} meses", f"lactante de {count} meses"
    years = count
    if years < 14:
        noun = "niño" if male else "niña"
    elif years < 18:
        noun = "adolescente varón" if male else "adolescente mujer"
    elif locale == "es-MX":
        noun = "paciente masculino" if male else "paciente femenino"
    else:
        noun = "varón" if male else "mujer"
    short = ("varón" if male else "mujer") if years >= 18 else noun
    return f"{noun} de {years} años", f"{short} de {years} años"


# --- templates -----------------------------------------------------------------------------------

_EN_TITLES = (
    "{who_short} with {cc}",
    "{Cc} in a {who}",
    "Help: {cc}, {who_short}",
    "{Cc} - ideas?",
    "Puzzling case: {cc}",
    "{who_short}, {cc}",
    "Second opinion please: {cc}",
)
_EN_OPENERS = (
    "",
    "",
    "Hi all,",
    "Looking for thoughts on a case.",
    "Would appreciate some input.",
    "Hoping someone has seen this before.",
    "Bit stuck with this one.",
)
_EN_INTRO = (
    "{A} {who} with {history}.",
    "{who} with a background of {history}.",
    "Pt is a {who}. PMH: {history}.",
    "Seeing a {who}, relevant history: {history}.",
)
_EN_SYMPTOMS = (
    "Presented with {items}.",
    "Now presents with {items}.",
    "C/o {items}.",
    "Came in with {items}.",
    "Main issues: {items}.",
)
_EN_EXAM = ("On exam: {items}.", "O/E {items}.", "Examination: {items}.", "Exam notable for {items}.")
_EN_TESTS = ("Workup so far: {items}.", "Ix: {items}.", "Results: {items}.", "Labs/imaging: {items}.")
_EN_TREATMENT = (
    "Tried {items} without much change.",
    "Has had {items}, no real improvement.",
    "Treated so far with {items}.",
    "{Items} given, still not better.",
)
_EN_QUESTIONS = (
    "Any ideas?",
    "What am I missing?",
    "Differentials?",
    "Has anyone seen something like this?",
    "Who would you refer to?",
    "What would you do next?",
    "Thoughts appreciated.",
)
_EN_FILLERS = (
    "Family are understandably worried.",
    "We are a small rural hospital with limited specialist access.",
    "Happy to share more details.",
    "Seen in clinic today.",
    "Have been going back and forth on this.",
    "Nothing like it in our department before.",
)
_EN_LEAKS = ("Wondering about {dx}?", "?{dx} - could this fit?", "A colleague suggested {dx}, not convinced.")

_ES_TITLES = (
    "{Who_short} con {cc}",
    "{Cc} en {who}",
    "Ayuda: {cc}",
    "{Cc}, ¿ideas?",
    "Caso para comentar: {cc}",
    "Consulta: {who_short} con {cc}",
)
_ES_OPENERS = {
    "es-ES": ("", "", "Hola a todos,", "Os cuento un caso.", "Buenas, compañeros.", "Os pido opinión."),
    "es-MX": ("", "", "Hola colegas,", "Les comparto un caso.", "Buen día, colegas.", "Les pido su opinión."),
}
_ES_INTRO = (
    "{Who} con AP de {history}.",
    "Se trata de {who}; antecedentes: {history}.",
    "{Who}. Antecedentes: {history}.",
    "Paciente: {who} con antecedente de {history}.",
)
_ES_SYMPTOMS = ("Acude por {items}.", "Consulta por {items}.", "Refiere {items}.", "Presenta {items}.")
_ES_EXAM = ("EF: {items}.", "A la exploración: {items}.", "Exploración física: {items}.", "Destaca {items}.")
_ES_TESTS = {
    "es-ES": (
        "Pruebas: {items}.",
        "Analítica y pruebas: {items}.",
        "Resultados: {items}.",
        "Estudios: {items}.",
    ),
    "es-MX": (
        "Laboratorios y estudios: {items}.",
        "Estudios: {items}.",
        "Resultados: {items}.",
        "Paraclínicos: {items}.",
    ),
}
_ES_TREATMENT = (
    "Se ha tratado con {items} sin mejoría.",
    "Ha recibido {items}, sin cambios.",
    "Tratamiento hasta ahora: {items}.",
    "Se pautó {items} sin respuesta.",
)
_ES_QUESTIONS = {
    "es-ES": (
        "¿Alguna idea?",
        "¿Qué se me escapa?",
        "¿Habéis visto algo parecido?",
        "¿Qué haríais vosotros?",
        "¿A quién lo derivaríais?",
    ),
    "es-MX": (
        "¿Alguna sugerencia?",
        "¿Qué más le harían?",
        "¿Alguien ha visto algo similar?",
        "¿Qué diagnósticos diferenciales consideran?",
        "¿A quién lo referirían?",
    ),
}
_ES_FILLERS = (
    "La familia está muy preocupada.",
    "Somos un hospital comarcal con acceso limitado a especialistas.",
    "Puedo ampliar datos si hace falta.",
    "Lo vi hoy en consulta.",
    "Llevamos días dándole vueltas.",
)
_ES_LEAKS = ("¿Podría ser {dx}?", "Me planteo {dx}, pero no lo tengo claro.", "Un compañero sugiere {dx}.")


class CaseWriter:
    """Turns (condition, presentation, patient, author style) into a realistic post."""

    def __init__(self, *, leak_rate: float) -> None:
        self.leak_rate = leak_rate

    def write(
        self,
        condition: Condition,
        presentation: Presentation,
        patient: Patient,
        style: AuthorStyle,
        rng: np.random.Generator,
        identifiers: PlantedIdentifiers | None = None,
    ) -> WrittenCase:
        spanish = style.language == "es"
        sentences = self._sentences(presentation, patient, style, rng)
        states_diagnosis = rng.random() < self.leak_rate
        if states_diagnosis:
            name = _pick(rng, tuple(condition.names(style.language)))
            sentences.append(_pick(rng, _ES_LEAKS if spanish else _EN_LEAKS).format(dx=name))
        question = self._question(presentation, style, rng)
        if question:
            sentences.append(question)
        # The opener (sentences[0], maybe empty) is adapted apart so identifiers can follow it.
        opener = self._adapt(sentences[0], presentation, style, rng)
        rest = self._adapt(" ".join(s for s in sentences[1:] if s), presentation, style, rng)
        title = self._adapt(
            self._title(presentation, patient, style, rng), presentation, style, rng, noisy=False
        )
        body, body_spans = _place_identifiers(opener, rest, identifiers, rng)
        return WrittenCase(title, body, states_diagnosis, body_spans)

    def _sentences(
        self,
        presentation: Presentation,
        patient: Patient,
        style: AuthorStyle,
        rng: np.random.Generator,
    ) -> list[str]:
        spanish = style.language == "es"
        lang = style.language
        who, _ = (
            describe_patient_es(patient, style.locale, rng) if spanish else describe_patient_en(patient, rng)
        )
        p = presentation
        parts = {
            "history": _sample(p.history, 1, rng),
            "symptoms": _sample(p.symptoms, 3, rng),
            "exam": _sample(p.exam, 2, rng),
            "tests": _sample(p.tests, 2, rng),
            "treatments": _sample(p.treatments, 1, rng),
        }

        def render() -> list[str]:
            opener = _pick(rng, _ES_OPENERS[style.locale] if spanish else _EN_OPENERS)
            intro = _pick(rng, _ES_INTRO if spanish else _EN_INTRO)
            article = "An" if who[:1] in "8aeiou" or who.startswith(("11", "18")) else "A"
            out = [
                opener,
                _sentence(
                    intro.format(
                        A=article,
                        who=who,
                        Who=who[:1].upper() + who[1:],
                        history=_join(parts["history"], lang),
                    )
                ),
            ]
            sections = (
                ("symptoms", _ES_SYMPTOMS if spanish else _EN_SYMPTOMS),
                ("exam", _ES_EXAM if spanish else _EN_EXAM),
                ("tests", _ES_TESTS[style.locale] if spanish else _EN_TESTS),
                ("treatments", _ES_TREATMENT if spanish else _EN_TREATMENT),
            )
            for key, templates in sections:
                items = _join(parts[key], lang)
                out.append(
                    _sentence(_pick(rng, templates).format(items=items, Items=items[:1].upper() + items[1:]))
                )
            return out

        sentences = render()
        fillers = list(_ES_FILLERS if spanish else _EN_FILLERS)
        while _words(sentences) < _TARGET_MIN_WORDS and fillers:
            sentences.insert(len(sentences) - 1, fillers.pop(int(rng.integers(len(fillers)))))
        for key in ("tests", "exam", "symptoms", "history", "treatments"):
            while _words(sentences) > _TARGET_MAX_WORDS and len(parts[key]) > 1:
                parts[key].pop()
                sentences = render()
        return sentences

    def _title(
        self, presentation: Presentation, patient: Patient, style: AuthorStyle, rng: np.random.Generator
    ) -> str:
        cc = presentation.chief_complaint.rstrip()
        templates: tuple[str, ...]
        if style.language == "es":
            who, who_short = describe_patient_es(patient, style.locale, rng)
            templates = _ES_TITLES
        else:
            who, who_short = describe_patient_en(patient, rng)
            templates = _EN_TITLES
        if cc.endswith("?"):  # a question reads badly with more words after it
            templates = tuple(t for t in templates if t.endswith("{cc}"))
        template = _pick(rng, templates)
        return template.format(
            cc=cc,
            Cc=cc[:1].upper() + cc[1:],
            who=who,
            who_short=who_short,
            Who_short=who_short[:1].upper() + who_short[1:],
        )

    def _question(self, presentation: Presentation, style: AuthorStyle, rng: np.random.Generator) -> str:
        if rng.random() >= style.asks_questions:
            return ""
        if presentation.question and rng.random() < 0.6:
            return _sentence(presentation.question).rstrip(".") + (
                "" if presentation.question.endswith("?") else "?"
            )
        return _pick(rng, _ES_QUESTIONS[style.locale] if style.language == "es" else _EN_QUESTIONS)

    def _adapt(
        self,
        text: str,
        presentation: Presentation,
        style: AuthorStyle,
        rng: np.random.Generator,
        *,
        noisy: bool = True,
    ) -> str:
        if style.language == "en":
            text = regional.to_english_spelling(text, style.spelling)
        elif presentation.locale != style.locale:
            text = regional.to_spanish_locale(text, style.locale)
        if noisy:
            text = regional.abbreviate(text, style.language, style.shorthand_rate, rng)
            text = regional.add_typos(text, style.typo_rate, rng)
        if style.drops_accents:
            text = regional.drop_accents(text)
        return text


def _words(sentences: list[str]) -> int:
    return sum(len(s.split()) for s in sentences)


def _place_identifiers(
    opener: str, rest: str, identifiers: PlantedIdentifiers | None, rng: np.random.Generator
) -> tuple[str, tuple[Span, ...]]:
    """Join the body, with the identifier sentence (if any) after the opener or at the end."""
    if identifiers is None:
        return " ".join(part for part in (opener, rest) if part), ()
    if rng.random() < 0.5:
        head = opener + " " if opener else ""
        body = head + identifiers.sentence + " " + rest
        offset = len(head)
    else:
        head = " ".join(part for part in (opener, rest) if part) + " "
        body = head + identifiers.sentence
        offset = len(head)
    return body, tuple(Span(s.start + offset, s.end + offset, s.kind) for s in identifiers.spans)
