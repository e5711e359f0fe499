"""Person names: capitalised word sequences, kept only where the context says "this is a person".

A capitalised sequence ("Asunción Yeni Quiñónez", "Mrs. Ann Johnson MD") is a candidate. It is a
name when it has a title (Mr, Dra., Lic.), follows a person word ("patient", "Pcte", "nombre:"),
is two words or more and follows a relative ("madre de", "her husband") or precedes a personal
detail ("'s mother", ", born", ", DOB", ", de 45 años", " (NHC"); also when a pipeline that tags
PERSON and proper nouns agrees (casematch's own trained pipelines tag neither: their names come
through `ner.NerRecognizer`, and these rules add what the context makes certain).

Eponyms ("Kawasaki", "síndrome de Guillain-Barré", "Wilson disease") are never names: NER alone
would remove diagnoses from the posts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from presidio_analyzer import LocalRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from ml.privacy.eponyms import DISEASE_HEADS_AFTER, HEAD_BEFORE, is_eponym, next_word_is_disease_head
from ml.privacy.kinds import NAME
from ml.text import fold

_UP = "A-ZÀ-ÖØ-Þ"
_LO = "a-zß-öø-ÿ"
# A capitalised word ending in lower case, so acronyms (CRP, MD) are not words:
# "Quiñónez", "O'Devenny", "Green-Cooper", "McPartland".
# Bounded length and no start mid-word, so "O'O'O'..." cannot make the search quadratic.
_WORD = rf"(?<![{_UP}{_LO}])[{_UP}](?:[{_UP}{_LO}]|['\u2019-](?=[{_UP}])){{0,40}}[{_LO}](?![{_UP}{_LO}\d])"
_ROMAN = re.compile(r"[IVX]+[a-d]?")  # "Rutherford IIb", "Forrest Ia": a class, not a name
_PARTICLE = r"(?:de(?: la| las| los)?|del|y|da|das|do|dos|van(?: der| den)?|von|der|di|du|le)"
TITLE = (
    r"(?:(?:Mr|Mrs|Ms|Mx|Dr|Dra|Prof|Sr|Sra|Srta|Srita|Lic|Licda|Ing|Mtro|Mtra|Dña|Rev)\.?"
    r"|Miss|Don|Doña|Sir|Dame)"
)
_NOT_TITLE = rf"(?!{TITLE} )"  # a title starts a new candidate: "Pcte Ing. Alberto Ponce"
_SUFFIX = r"(?:,? (?:Jr\.|Jr|Sr\.|II|III|IV|MD|DDS|DMD|PhD|DVM|RN|Esq\.))"
CANDIDATE = re.compile(
    rf"(?P<title>{TITLE} )?(?P<words>{_WORD}(?:[ \t]+(?:{_PARTICLE}[ \t]+)*{_NOT_TITLE}{_WORD}){{0,6}})"
    rf"(?P<suffix>{_SUFFIX}(?![ \t]+[{_UP}]))?"  # "Pcte Sr. Jos Raya": that Sr. is a title
)

# Strong person words vouch for a single capitalised word ("Patient Lopez", "nombre: Ruiz").
_STRONG_PERSON_WORDS = (
    r"patient|pt|pte|pcte|pac|paciente|name|nombre|named|called|llamad[oa]|se llama|apellidos?|surname"
    r"|remitid[oa] por|referred by|m[eé]dico|responsable cl[ií]nico|facultativo"
)
# Weak ones only for two words or more: "madre de Tijuana" is where the mother comes from.
_WEAK_PERSON_WORDS = (
    r"se trata de|caso de|case of|mother|father|mum|mom|dad|son|daughter|wife|husband|partner|sister"
    r"|brother|parent|guardian|carer|caregiver|family|madre|padre|mam[aá]|pap[aá]|hij[oa]|espos[oa]"
    r"|pareja|herman[oa]|tutora?|familia|familiar|cuidadora?|domicilio"
)
_CUE_TAIL = r"(?: (?:de|of|is|es))?)\s*[:(,\-\u2013]?\s*$"
STRONG_CUE_BEFORE = re.compile(rf"(?i:\b(?:{_STRONG_PERSON_WORDS}){_CUE_TAIL}")
WEAK_CUE_BEFORE = re.compile(rf"(?i:\b(?:{_WEAK_PERSON_WORDS}){_CUE_TAIL}")
_RELATIVES = (
    r"mother|father|mum|mom|dad|parents?|wife|husband|son|daughter|family|sister|brother|partner"
    r"|carer|guardian"
)
# Personal details that follow a name after a comma or parenthesis: ", DOB", " (NHC", ", 45 yo".
_DETAILS = (
    r"born|b\.|DOB|D\.O\.B\.?|date of birth|FN|F\.N\.|fecha de nacimiento|f\. nac\.?|nacid[oa]"
    r"|aged?|edad|MRN|NHC|SSN|SIN|DNI|NIE|NIF|CURP|NSS|NHS|NI no\.?|tel\.?|phone|mobile|m[oó]vil"
    r"|tel[eé]fono|expediente|hospital no\.?|historia|(?:an? |de )?\d{1,3} ?(?:y/?o|yo|years? old"
    r"|-year-old|años|meses|a\.)|an? \d{1,3}[- ]year"
    r"|(?:var[oó]n|mujer|hombre|niñ[oa]|masculino|femenino|male|female|man|woman|boy|girl),? (?:de )?\d+"
)
# Without a comma only the unambiguous ones: "Ana Ruiz nacida el", "John Smith was a 45-year-old".
_BARE_DETAILS = r"born|nacid[oa]|DOB|FN|aged|(?:is|was|es) (?:an?|una?) \d{1,3}"
PERSON_CUE_AFTER = re.compile(
    rf"^(?:['\u2019]s (?i:{_RELATIVES})\b|\s*[,(]\s*(?:{_DETAILS})(?!\w)|\s+(?:{_BARE_DETAILS})(?!\w))"
)


def _folded_set(words: str) -> frozenset[str]:
    return frozenset(fold(w) for w in words.split())


# Capitalised words that start sentences or label fields, and clinical shorthand that looks like a
# word ("Pt Hx: ..."): stripped from the front of a candidate.
LEADING_NOISE = _folded_set(
    """
    patient pt pte pcte pac paciente family familia domicilio name nombre the a an el la los las un
    una this that our his her their su sus mi my in on at for from with by en con por para de del se
    seeing dear hi hello hola he she it we they ella ellos is was tried given started seen recien
    hx dx ddx rx tx sx fx ix px bx cx mx ex hpi ap ef
    """
)
# Words that make any candidate something else: medical heads ("Sindrome Lynch").
_NEVER_IN_NAME = _folded_set("sindrome enfermedad signo encefalopatia daily recurrent familial full") | (
    DISEASE_HEADS_AFTER
)
# Sex and age words open a description ("Paciente Masculino de 45"), but end names ("Delia Niño").
_NEVER_FIRST = _folded_set(
    """
    male female masculino femenino varon mujer hombre nino nina boy girl man woman baby bebe
    lactante adolescente anciano anciana
    """
)
# Words of places and institutions: they veto a candidate only when no cue vouches for it
# ("Hospital Central", "Punta Cana"), since they are surnames too ("Samuel West", "Elias del Río").
_PLACE_WORDS = _folded_set(
    """
    hospital clinica centro instituto universidad servicio unidad departamento sanatorio colegio
    escuela cruz roja seguro ciudad rio punta puerto isla islas sierra valle vega altos bajos monte
    cerro lago playa costa corea estados unidos reino unido nueva nuevo san santa santo norte sur
    este oeste central national nacional general university clinic center centre institute
    department unit ward valley south north east west new island mount lake
    """
)
_PROPER_TAGS = frozenset({"NNP", "NNPS"})
_MEDICAL_ENDING = re.compile(
    r"(?:itis|osis|a?emia|ectomy|otomy|ostomy|plasty|scopy|gram|graphy|pathy|algia|[a-z]{3}oma|[a-z]{4}eal"
    r"|[a-z]{4}ular|ology|ologic(?:al)?|[a-z]{4}ous|[a-z]{3}ase|[a-z]{4}ium)s?$"
)


@dataclass(frozen=True, slots=True)
class _Candidate:
    start: int
    end: int
    words: tuple[tuple[int, str], ...]  # (offset in the text, word), particles and titles left out
    titled: bool
    cue_inside: bool  # a strong person word was stripped from the front ("Patient Jason Lopez")


class NameRecognizer(LocalRecognizer):
    """Names by context rules, plus English spaCy PERSON entities that survive the eponym filter."""

    def __init__(self, language: str) -> None:
        super().__init__(supported_entities=[NAME], supported_language=language, name="NameRecognizer")

    def load(self) -> None:
        """Nothing to load: rules only; NER output arrives in the NLP artifacts."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        proper = _person_proper_nouns(nlp_artifacts)
        results = []
        for candidate in _candidates(text):
            score = _score(text, candidate, proper)
            if score > 0:
                results.append(
                    RecognizerResult(
                        entity_type=NAME,
                        start=candidate.start,
                        end=candidate.end,
                        score=score,
                    )
                )
        return results


def _candidates(text: str) -> list[_Candidate]:
    found = []
    for match in CANDIDATE.finditer(text):
        candidate = _strip_leading(match)
        if candidate is not None:
            found.append(candidate)
    return found


def _strip_leading(match: re.Match[str]) -> _Candidate | None:
    """Drop sentence starters and person words from the front: "Domicilio de Luz Llorente"."""
    offset = match.start("words")
    tokens = list(re.finditer(r"\S+", match.group("words")))
    cue_inside = False
    while tokens and _is_leading_noise(tokens[0].group()):
        cue_inside = cue_inside or STRONG_CUE_BEFORE.search(tokens[0].group()) is not None
        tokens.pop(0)
    words = tuple(
        (offset + t.start(), t.group())
        for t in tokens
        if not re.fullmatch(_PARTICLE, t.group()) and not _ROMAN.fullmatch(t.group())
    )
    if not words:
        return None
    titled = match.group("title") is not None and tokens[0].start() == 0
    # Titles and credentials vouch for the name but stay in the text, like labels: "Dr. [NAME] MD".
    return _Candidate(offset + tokens[0].start(), offset + tokens[-1].end(), words, titled, cue_inside)


def _is_leading_noise(word: str) -> bool:
    return fold(word) in LEADING_NOISE or re.fullmatch(_PARTICLE, word) is not None


def _score(text: str, candidate: _Candidate, proper: frozenset[int]) -> float:
    """How sure we are that the candidate is a person; 0 means it is not one."""
    before, after = text[max(0, candidate.start - 40) : candidate.start], text[candidate.end :]
    words = [w for _, w in candidate.words]
    if next_word_is_disease_head(after) or HEAD_BEFORE.search(before):
        return 0.0  # "Wilson disease", "enfermedad de Crohn"
    if candidate.titled:
        return 0.9
    if all(is_eponym(w) for w in words) or any(fold(w) in _NEVER_IN_NAME for w in words):
        return 0.0
    if fold(words[0]) in _NEVER_FIRST:
        return 0.0
    if candidate.cue_inside or STRONG_CUE_BEFORE.search(before):
        return 0.85
    if len(words) >= 2 and (WEAK_CUE_BEFORE.search(before) or PERSON_CUE_AFTER.match(after[:60])):
        return 0.85
    if any(fold(w) in _PLACE_WORDS for w in words):
        return 0.0
    n_proper = sum(start in proper and _name_like(text, word) for start, word in candidate.words)
    if n_proper >= 2 or (n_proper == 1 and WEAK_CUE_BEFORE.search(before)):
        return 0.7  # spaCy agrees: "Maria Gonzalez presented", "her husband John"
    return 0.0


def _name_like(text: str, word: str) -> bool:
    """Whether a word spaCy put in a PERSON could be a name, not a Title-Cased clinical term.

    A word the same post also writes in lower case ("Stool Hemoccult ... stool") or with a
    medical ending ("Transesophageal Echocardiogram") is a term.
    """
    lowered = word.lower()
    if _MEDICAL_ENDING.search(lowered):
        return False
    return re.search(rf"(?<![\w-]){re.escape(lowered)}(?![\w-])", text) is None


def _person_proper_nouns(nlp_artifacts: NlpArtifacts | None) -> frozenset[int]:
    """Offsets of proper nouns inside PERSON entities (empty without an NER model)."""
    if nlp_artifacts is None or not nlp_artifacts.entities:
        return frozenset()
    return frozenset(
        token.idx
        for entity in nlp_artifacts.entities
        if entity.label_ == "PERSON"
        for token in entity
        if token.tag_ in _PROPER_TAGS
    )
