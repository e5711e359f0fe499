"""What the /ui pages say, in English and Spanish, and the example posts they offer.

The server renders the page in one language and hands both tables to the browser, so the EN/ES
toggle switches every label without another request. Placeholders in braces (`{seconds}`) are
filled in by ui.js.
"""

from __future__ import annotations

from typing import Literal, TypedDict

UiLanguage = Literal["en", "es"]
UI_LANGUAGES: tuple[UiLanguage, ...] = ("en", "es")

STRINGS: dict[UiLanguage, dict[str, str]] = {
    "en": {
        "page_route": "Case view",
        "page_case": "Stored case",
        "tagline": "Specialties, doctors and similar resolved cases for hard posts",
        "skip_link": "Skip to the suggestions",
        "lang_group": "Language of the page",
        "noscript": "This page needs JavaScript: it calls the casematch API from your browser.",
        "key_heading": "API key",
        "key_label": "Your API key",
        "key_hint": "Kept in this browser tab only and sent only to this service.",
        "key_save": "Use this key",
        "key_saved": "A key is set for this tab.",
        "key_forget": "Forget the key",
        "key_change": "Change the key",
        "post_heading": "Post a case",
        "examples_label": "Or start from an example",
        "title_label": "Title",
        "text_label": "Case text",
        "language_label": "Language of the case",
        "language_auto": "Detect automatically",
        "language_en": "English",
        "language_es": "Spanish",
        "submit": "Analyse the case",
        "open_heading": "Open a stored case",
        "case_id_label": "Case id",
        "case_id_hint": "Letters, digits and . _ : - (e.g. c000380)",
        "open_button": "Open",
        "new_case": "Post a new case",
        "results_heading": "Suggestions",
        "results_empty": "Post or pick a case to see suggested specialties, doctors "
        "and similar resolved cases.",
        "loading": "Analysing the case…",
        "loading_case": "Loading the case…",
        "results_ready": "{specialties} specialties, {doctors} doctors and {similar} "
        "similar cases suggested.",
        "specialties_heading": "Suggested specialties",
        "doctors_heading": "Suggested doctors",
        "similar_heading": "Similar resolved cases",
        "no_doctors": "No available doctor fits this case.",
        "no_similar": "No similar resolved case yet.",
        "doctor_match": "match {score}",
        "diagnosis": "Diagnosis",
        "similarity": "Similarity {score}",
        "similarity_hint": "Ranking score of the similar-cases search: higher is more similar.",
        "shared_terms": "In common (this post ↔ that case)",
        "no_shared_terms": "Similar in meaning, no words in common.",
        "open_case": "Open case {id}",
        "urgency": "Urgency",
        "urgency_emergent": "Emergent",
        "urgency_urgent": "Urgent",
        "urgency_routine": "Routine",
        "p_emergent": "P(emergent) {score}",
        "rare": "Rare case",
        "rare_detail": "unlike the resolved cases: shown to every doctor",
        "rarity": "Rarity",
        "not_rare": "Not rare",
        "novelty": "novelty {score}",
        "case_language": "Language",
        "model": "Model {name} v{version}",
        "case_heading": "Case",
        "case_deidentified": "De-identified text, as stored.",
        "redactions": "Removed before storing: {list}.",
        "no_redactions": "Nothing was removed: no identifiers found.",
        "kind_NAME": "name",
        "kind_DATE": "date",
        "kind_PHONE": "phone number",
        "kind_EMAIL": "e-mail address",
        "kind_ADDRESS": "street address",
        "kind_RECORD_ID": "record number",
        "kind_NATIONAL_ID": "national id",
        "kind_LOCATION": "place",
        "kind_INSURANCE_ID": "insurance number",
        "kind_LICENCE_ID": "licence number",
        "case_resolved": "Resolved",
        "case_unresolved": "Not resolved yet",
        "err_key_missing": "Enter your API key first.",
        "err_401": "Key refused: the service does not accept this API key. Check it and enter it again.",
        "err_403": "Key refused: this API key may not route cases (it lacks the “route” scope).",
        "err_429": "Too many requests with this key: wait {seconds} s and try again.",
        "err_404": "No case with id {id}.",
        "err_422": "The case was not accepted:",
        "err_network": "Could not reach the service. Check your connection and try again.",
        "err_server": "The service failed (HTTP {status}, request {request_id}). Try again later.",
    },
    "es": {
        "page_route": "Vista de caso",
        "page_case": "Caso guardado",
        "tagline": "Especialidades, médicos y casos resueltos similares para casos difíciles",
        "skip_link": "Ir a las sugerencias",
        "lang_group": "Idioma de la página",
        "noscript": "Esta página necesita JavaScript: llama a la API de casematch desde tu navegador.",
        "key_heading": "Clave de API",
        "key_label": "Tu clave de API",
        "key_hint": "Se guarda solo en esta pestaña y solo se envía a este servicio.",
        "key_save": "Usar esta clave",
        "key_saved": "Hay una clave para esta pestaña.",
        "key_forget": "Olvidar la clave",
        "key_change": "Cambiar la clave",
        "post_heading": "Publicar un caso",
        "examples_label": "O empieza con un ejemplo",
        "title_label": "Título",
        "text_label": "Texto del caso",
        "language_label": "Idioma del caso",
        "language_auto": "Detectar automáticamente",
        "language_en": "Inglés",
        "language_es": "Español",
        "submit": "Analizar el caso",
        "open_heading": "Abrir un caso guardado",
        "case_id_label": "Id del caso",
        "case_id_hint": "Letras, dígitos y . _ : - (p. ej. c000380)",
        "open_button": "Abrir",
        "new_case": "Publicar un caso nuevo",
        "results_heading": "Sugerencias",
        "results_empty": "Publica o elige un caso para ver especialidades, médicos y "
        "casos resueltos similares.",
        "loading": "Analizando el caso…",
        "loading_case": "Cargando el caso…",
        "results_ready": "{specialties} especialidades, {doctors} médicos y {similar} "
        "casos similares sugeridos.",
        "specialties_heading": "Especialidades sugeridas",
        "doctors_heading": "Médicos sugeridos",
        "similar_heading": "Casos resueltos similares",
        "no_doctors": "Ningún médico disponible encaja con este caso.",
        "no_similar": "Todavía no hay casos resueltos similares.",
        "doctor_match": "afinidad {score}",
        "diagnosis": "Diagnóstico",
        "similarity": "Similitud {score}",
        "similarity_hint": "Puntuación de la búsqueda de casos similares: cuanto más alta, más parecido.",
        "shared_terms": "En común (este caso ↔ aquel caso)",
        "no_shared_terms": "Parecido en el sentido, sin palabras en común.",
        "open_case": "Abrir el caso {id}",
        "urgency": "Urgencia",
        "urgency_emergent": "Emergente",
        "urgency_urgent": "Urgente",
        "urgency_routine": "No urgente",
        "p_emergent": "P(emergente) {score}",
        "rare": "Caso raro",
        "rare_detail": "distinto de los casos resueltos: se muestra a todos los médicos",
        "rarity": "Rareza",
        "not_rare": "No es raro",
        "novelty": "novedad {score}",
        "case_language": "Idioma",
        "model": "Modelo {name} v{version}",
        "case_heading": "Caso",
        "case_deidentified": "Texto desidentificado, tal como se guardó.",
        "redactions": "Eliminado antes de guardar: {list}.",
        "no_redactions": "No se eliminó nada: no se encontraron identificadores.",
        "kind_NAME": "nombre",
        "kind_DATE": "fecha",
        "kind_PHONE": "teléfono",
        "kind_EMAIL": "correo electrónico",
        "kind_ADDRESS": "dirección",
        "kind_RECORD_ID": "número de historia",
        "kind_NATIONAL_ID": "documento de identidad",
        "kind_LOCATION": "lugar",
        "kind_INSURANCE_ID": "número de aseguramiento",
        "kind_LICENCE_ID": "número de colegiado",
        "case_resolved": "Resuelto",
        "case_unresolved": "Sin resolver",
        "err_key_missing": "Primero introduce tu clave de API.",
        "err_401": "Clave rechazada: el servicio no acepta esta clave de API. "
        "Revísala e introdúcela de nuevo.",
        "err_403": "Clave rechazada: esta clave no puede derivar casos (le falta el permiso «route»).",
        "err_429": "Demasiadas solicitudes con esta clave: espera {seconds} s y vuelve a intentarlo.",
        "err_404": "No hay ningún caso con el id {id}.",
        "err_422": "El caso no fue aceptado:",
        "err_network": "No se pudo contactar con el servicio. Revisa la conexión y vuelve a intentarlo.",
        "err_server": "El servicio falló (HTTP {status}, solicitud {request_id}). Inténtalo más tarde.",
    },
}


class Example(TypedDict):
    label_en: str
    label_es: str
    title: str
    text: str
    language: UiLanguage


EXAMPLES: tuple[Example, ...] = (
    {
        "label_en": "Fontan child coughing up casts (Spanish)",
        "label_es": "Niño con Fontan que expulsa moldes (español)",
        "title": "Niño de 9 años con Fontan que expulsa moldes al toser",
        "text": "Operado de Fontan a los 4 años. Tos con expulsión de moldes gomosos y ramificados, "
        "como ramitas. Satura 85%. ¿Qué estudios pediríais?",
        "language": "es",
    },
    {
        "label_en": "Fevers and a new murmur after dental work (English)",
        "label_es": "Fiebre y soplo nuevo tras un tratamiento dental (inglés)",
        "title": "Recurrent fevers and a new murmur after dental work",
        "text": "58-year-old with prosthetic aortic valve, three weeks of fevers, night sweats, splinter "
        "haemorrhages and a new regurgitant murmur. Blood cultures pending. What next?",
        "language": "en",
    },
    {
        "label_en": "Crushing chest pain with ST elevation (Spanish)",
        "label_es": "Dolor torácico opresivo con elevación del ST (español)",
        "title": "Varón de 62 años con dolor torácico opresivo de 40 minutos",
        "text": "Dolor opresivo irradiado a brazo izquierdo, sudoración fría. ECG con elevación del ST "
        "en V1-V4. TA 90/60. ¿Trombólisis o traslado a hemodinámica?",
        "language": "es",
    },
)


def ui_language(value: str | None) -> UiLanguage:
    """The page language asked for (`?lang=es`), English for anything else."""
    return "es" if value == "es" else "en"
