"""Medical eponyms and the words around them, so that diseases named after people stay in the text.

NER models tag "Crohn", "Kawasaki" or "Guillain-Barré" as people; a case post without them loses
its diagnosis. A candidate name made only of these words, or sitting next to a disease noun
("Wilson disease", "enfermedad de Wilson"), is kept.
"""

from __future__ import annotations

import re

from ml.text import fold


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Folded (lower-case, no accents). Eponyms that are also common first names or surnames (Arnold,
# Johnson, Lynch) are listed only in their compound form, so "Glenn Johnson" can still be a person.
EPONYMS = _word_set(
    """
    addison adie alport alzheimer apgar chiari asherman asperger bartter bartonella basedow becker
    beckwith wiedemann behcet bence berger soulier blalock taussig sequard brugada budd buerger
    burkitt caplan charcot tooth chagas cheyne stokes churg strauss cooley coombs creutzfeldt jakob
    crigler najjar crohn cushing dandy de quervain devic blackfan dieulafoy dressler dubin duchenne
    dupuytren ehlers danlos eisenmenger epstein barr erb ewing fabry fallot fanconi felty fitz
    fontan fournier friedreich gaucher glasgow glanzmann goodpasture gottron graves guillain barre
    guillain-barre hartmann hashimoto heberden bouchard henoch schonlein hirschsprung hodgkin holter
    horner huntington hurler jarisch herxheimer kallmann kaposi kartagener kasai kawasaki kayser
    fleischer kernig brudzinski klinefelter klippel trenaunay korsakoff wernicke krukenberg kussmaul
    landau kleffner langerhans legg calve perthes lennox gastaut leriche lesch nyhan libman sacks
    lyme mallory weiss marfan mccune albright meckel meige meniere menkes mobitz munchausen niemann
    pick noonan ortner osgood schlatter osler weber rendu paget pancoast parinaud parkinson pautrier
    peutz jeghers peyronie pott prader willi prinzmetal quincke ranson raynaud reiter reye riedel
    rinne roux rovsing salter schatzki scheuermann sezary sheehan shy drager sjogren leventhal
    sturge takayasu tay sachs tietze tourette treacher trousseau virchow von willebrand hippel
    lindau waldenstrom wallenberg waterhouse friderichsen wegener wenckebach wermer whipple wilson
    wiskott aldrich wolff zenker zollinger rockall pugh centor geneva curb alvarado hess spetzler
    mallampati breslow gleason bethesda killip norwood rastelli ebstein kocher pfannenstiel nissen
    roux-en-y billroth seldinger valsalva trendelenburg lachman mcmurray phalen tinel finkelstein
    babinski romberg chvostek cullen mcburney homan homans mantoux ziehl neelsen gram giemsa
    papanicolaou pap westergren schirmer doppler swan ganz foley quinton hickman tenckhoff dix
    hallpike epley semont frenzel tzanck nikolsky auspitz koebner darier rutherford argyll gunn
    kernohan cheyne-stokes muehrcke janeway duroziez corrigan traube musset levine kerley hageman
    philadelphia auer dohle pelger huet sternberg charcot-leyden curschmann exner councilman
    mallory-denk negri lewy hirano sezary-lutzner norwalk coxsackie epstein-barr schwann purkinje
    broca wernicke-korsakoff brodmann willis galen monro magendie luschka sylvius rolando heschl
    meynert papez kluver bucy klüver ganser capgras cotard fregoli othello stockholm arnold-chiari
    stevens-johnson fitz-hugh-curtis marcus-gunn ramsay-hunt zollinger-ellison wolff-parkinson-white
    glenn-fontan blumberg morrison douglas mcconnell wilms hanley
    """
)

# Nouns that make the capitalised word before them an eponym ("Wilson disease", "Fontan circulation").
DISEASE_HEADS_AFTER = _word_set(
    """
    disease syndrome sign signs test tests procedure operation circulation shunt index score
    criteria classification scale stage staging maneuver manoeuvre reflex phenomenon lesion
    lesions node nodes ulcer palsy anomaly triad tetrad pentad lymphoma sarcoma tumour tumor
    fracture repair anastomosis pouch catheter line tube incision position manoeuvre
    microabscesses microabscess cells cell bodies body granules stain staining count
    agar type disorder deformity contracture cyst cysts diverticulum esophagus oesophagus
    spots nodules nodule angle rule rules equation formula method technique fistula fixation
    aneurysm malformation dystrophy ataxia chorea dementia encephalopathy neuralgia
    thyroiditis arteritis vasculitis hernia gangrene boutonniere boutonnière
    """
)

# Spanish and English phrases after which a capitalised word names a disease, not a person.
_HEAD_BEFORE = (
    r"(?:s[ií]ndrome|enfermedad|signo|maniobra|test|prueba|escala|criterios?|cirug[ií]a|operaci[oó]n"
    r"|intervenci[oó]n|t[eé]cnica|procedimiento|fen[oó]meno|[ií]ndice|reflejo|tr[ií]ada|[uú]lcera"
    r"|circulaci[oó]n|derivaci[oó]n|linfoma|sarcoma|tumor|fractura|par[aá]lisis|anomal[ií]a"
    r"|tetralog[ií]a|clasificaci[oó]n|puntuaci[oó]n|c[eé]lulas?|cuerpos?|n[oó]dulos?|f[oó]rmula"
    r"|posici[oó]n|sonda|cat[eé]ter|cuerpos|ataxia|corea|demencia|distrofia|tiroiditis|arteritis"
    r"|hernia|gangrena|quiste|divert[ií]culo|malformaci[oó]n|aneurisma|tipo|seg[uú]n|de\s+tipo)"
)
HEAD_BEFORE = re.compile(_HEAD_BEFORE + r"\s+(?:de\s+(?:la\s+|los\s+)?)?$", re.IGNORECASE)


def is_eponym(word: str) -> bool:
    """True for a word (or hyphenated compound, "Guillain-Barré") that names a disease after a person."""
    folded = fold(word).removesuffix("'s").removesuffix("\u2019s")
    return folded in EPONYMS or all(part in EPONYMS for part in folded.split("-"))


def next_word_is_disease_head(following: str) -> bool:
    """True when the text right after a candidate starts with a disease noun ("'s disease", " sign")."""
    match = re.match(r"(?:['\u2019]s)?\s+([A-Za-zÀ-ÿ]+)", following)
    return match is not None and fold(match.group(1)) in DISEASE_HEADS_AFTER
