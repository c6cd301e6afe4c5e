"""Text folding for matching: references and names as comparable keys (polars expressions).

References: `norm` is upper-case letters and digits only ("inv 2026/0102" ->
"INV20260102"); `core` is the number inside it, read the way a person reads a
badly typed or OCR-ed reference: the letter prefix dropped, O/I/L/S/B/Z taken
for 0/1/1/5/8/2, leading zeros dropped ("INV-2O26-O1O2" -> "20260102").
Names: lower case, accents and punctuation dropped, legal forms removed
("Café de Flore SARL" -> "cafe de flore").
"""

from __future__ import annotations

import polars as pl

OCR_LETTERS = ["O", "Q", "D", "I", "L", "S", "B", "Z"]
OCR_DIGITS = ["0", "0", "0", "1", "1", "5", "8", "2"]
_NUMBERISH = r"^[0-9OQDILSBZ]*[0-9][0-9OQDILSBZ]*$"  # digits, and letters a scanner takes for digits

# Legal forms and filler words that say nothing about who pays (matched as whole words after folding).
LEGAL_FORMS = (
    "gmbh", "mbh", "ag", "kg", "ohg", "ug", "ev", "bv", "nv", "vof", "ltd", "limited", "llc", "llp", "lp", "inc",
    "incorporated", "corp", "corporation", "co", "company", "plc", "pty", "pte", "sa", "sas", "sarl", "sasu",
    "eurl", "snc", "spa", "srl", "sl", "slu", "sau", "ab", "as", "asa", "aps", "oy", "oyj", "kk", "sro", "as",
    "oe", "ae", "kft", "zrt", "doo", "dd", "se", "sp", "zoo", "spzoo", "sc", "cv", "bvba", "sprl", "scs",
    "holding", "holdings", "group", "the", "und", "and", "et", "y", "e", "en", "und", "ou",
    # legal forms written out (after folding): they say as little about the payer as their abbreviations
    "gesellschaft", "mit", "beschrankter", "haftung", "aktiengesellschaft", "ges", "societe", "anonyme",
    "sociedad", "anonima", "limitada", "societa", "per", "azioni", "besloten", "vennootschap", "spolka",
    "ograniczona", "odpowiedzialnoscia", "jawna", "spol", "aktiebolag", "aktiebolaget", "osakeyhtio",
    "anonim", "sirketi", "kabushiki", "kaisha", "lda", "unipessoal", "sti", "epe", "asa", "spj", "oyj", "z", "u",
)
_LEGAL_RE = r"\b(?:" + "|".join(sorted(set(LEGAL_FORMS), key=len, reverse=True)) + r")\b"
# legal forms written with dots or spaces between letters, folded first: "s.p.a.", "sp. z o.o.", "a/s", "s.a.r.l."
_SPACED_FORMS = (r"\b(?:s p a|s a r l|s a s u|s a s|s a u|s a|s r l|s r o|sp z o o|sp z oo|a s|a g|b v b a|b v|n v|k k"
                 r"|o e|s l u|s l|e k|e v|d o o|s n c|sp j|s p r l|l l c|p l c|g m b h|m b h)\b")


def ref_norm(expr: pl.Expr) -> pl.Expr:
    return expr.str.to_uppercase().str.replace_all(r"[^A-Z0-9]", "")


def ref_core(norm: pl.Expr) -> pl.Expr:
    """The number inside a normalised reference, OCR confusions repaired, leading zeros dropped; null when
    letters other than OCR look-alikes sit among the digits (a hex id like "E2E0A26110", a word)."""
    rest = norm.str.replace(r"^[A-Z]+", "")
    return pl.when(rest.str.contains(_NUMBERISH)).then(
        rest.str.replace_many(OCR_LETTERS, OCR_DIGITS).str.replace_all(r"[^0-9]", "").str.strip_chars_start("0")
    )


def ref_group_core(expr: pl.Expr) -> pl.Expr:
    """The number inside a reference with leading zeros dropped per group of digits:
    "INV-2026-004512" and "inv 2026/4512" both give "20264512" (null when it is not a number, as above)."""
    rest = expr.str.to_uppercase().str.replace(r"^[A-Z]+", "")
    return pl.when(rest.str.replace_all(r"[^A-Z0-9]", "").str.contains(_NUMBERISH)).then(
        rest.str.replace_many(OCR_LETTERS, OCR_DIGITS)
        .str.replace_all(r"(^|[^0-9])0+([0-9])", "$1$2")
        .str.replace_all(r"[^0-9]", "")
    )


# letters that Unicode does not decompose into a base letter and a mark, as banks spell them out:
# "Møller" arrives as "MOLLER", "Łódź" as "LODZ", "Ærø" as "AEROE"
_UNDECOMPOSED = ["ß", "ø", "Ø", "ł", "Ł", "æ", "Æ", "œ", "Œ", "đ", "Đ", "ð", "Ð", "þ", "Þ", "ı", "ħ", "Ħ", "ŧ", "Ŧ"]
_SPELLED = ["ss", "o", "O", "l", "L", "ae", "AE", "oe", "OE", "d", "D", "d", "D", "th", "TH", "i", "h", "H", "t", "T"]


# Words of trade that payers and banks abbreviate, folded to one short form on both sides ("International"
# and "Intl" both give "intl"); whole words only, after folding.
ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "intl": ("international", "internationale", "internacional", "internazionale"),
    "bros": ("brothers",), "hnos": ("hermanos",), "mfg": ("manufacturing",), "eng": ("engineering",),
    "ind": ("industries", "industrie", "industria", "industrias"), "hldgs": ("holdings",), "trdg": ("trading",),
    "svcs": ("services",), "log": ("logistics", "logistik", "logistica", "logistique"),
    "transp": ("transportes", "transports", "transporte"), "distr": ("distribution", "distribuciones", "distrib"),
    "const": ("construcciones", "constructions"), "costr": ("costruzioni",), "inst": ("installatie",),
    "maschb": ("maschinenbau",), "elektrotech": ("elektrotechnik",), "handelsond": ("handelsonderneming",),
    "ph": ("przedsiebiorstwo handlowe",), "mgmt": ("management",), "assoc": ("associates",),
    "dept": ("department",), "ctr": ("center", "centre"), "tech": ("technologies", "technology"),
}
_ABBREVIATED = [" " + long.replace(" ", "  ") + " " for short, longs in ABBREVIATIONS.items() for long in longs]
_SHORT = [f" {short} " for short, longs in ABBREVIATIONS.items() for _ in longs]


def name_fold(expr: pl.Expr, abbreviate: bool = True) -> pl.Expr:
    """Payer and customer names, comparable: case, accents, punctuation, '&', legal forms, and (unless told
    not to: a name cut off mid-word must be compared as written) words of trade to their short forms."""
    folded = (
        expr.fill_null("")
        .str.replace_many(_UNDECOMPOSED, _SPELLED)
        .str.normalize("NFKD")
        .str.replace_all(r"\p{M}", "")
        .str.to_lowercase()
        # banks' character sets write umlauts out: "Präzision" arrives as "PRAEZISION"; fold both to "prazision"
        .str.replace_all(r"([a-z])(a|o|u)e", "$1$2")
        .str.replace_all(r"&|\+", " and ")
        .str.replace_all(r"[^a-z0-9]+", " ")
        .str.replace_all(_SPACED_FORMS, " ")
        .str.replace_all(_LEGAL_RE, " ")
        .str.strip_chars()
    )
    folded = folded.str.replace_all(r"\s+", " ")
    return abbreviated(folded) if abbreviate else folded


def abbreviated(folded: pl.Expr) -> pl.Expr:
    """A folded name with its words of trade in their short forms (the last step of name_fold)."""
    return (
        # every word padded by its own spaces, so that neighbouring words are each found whole
        folded.str.replace_all(" ", "  ")
        .pipe(lambda e: (" " + e + " ").str.replace_many(_ABBREVIATED, _SHORT))
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
    )


def account_norm(expr: pl.Expr) -> pl.Expr:
    """IBANs and account numbers without spaces, dashes or case."""
    return expr.str.to_uppercase().str.replace_all(r"[^A-Z0-9]", "")


def rf_valid(reference: str) -> bool:
    """ISO 11649 creditor reference check (RFkk + up to 21 alphanumerics, mod 97 == 1)."""
    ref = "".join(reference.split()).upper()
    if not (5 <= len(ref) <= 25 and ref.startswith("RF") and ref[2:4].isdigit() and ref[4:].isalnum()):
        return False
    digits = "".join(str(int(ch, 36)) for ch in ref[4:] + ref[:4])
    return int(digits) % 97 == 1
