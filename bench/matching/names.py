"""Company names for the matching benchmark: many countries and legal forms, and the ways banks mangle them.

Pure data and small string functions; generate.py decides who pays under which variant.
"""

from __future__ import annotations

import random
import unicodedata

# country: (weight, currency, legal forms, surnames / proper names, trade words, places)
COUNTRIES: dict[str, tuple[int, str, list[str], list[str], list[str], list[str]]] = {
    "DE": (20, "EUR", ["GmbH", "GmbH", "AG", "GmbH & Co. KG", "KG", "e.K."],
           ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
            "Hoffmann", "Koch", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Zimmermann",
            "Braun", "Krüger", "Hartmann", "Lange", "Werner", "Krause", "Nordlicht", "Weißbach", "Jäger"],
           ["Bau", "Maschinenbau", "Elektrotechnik", "Logistik", "Handel", "Metallbau", "Holztechnik",
            "Automobile", "Druckerei", "Lebensmittel", "Sanitärtechnik", "Verpackungen", "Spedition"],
           ["Hamburg", "München", "Köln", "Stuttgart", "Nord", "Süd", "Leipzig", "Dresden", "Bremen"]),
    "AT": (4, "EUR", ["GmbH", "AG", "OG", "KG"],
           ["Gruber", "Huber", "Bauer", "Pichler", "Steiner", "Moser", "Mayer", "Hofer", "Leitner"],
           ["Holzbau", "Transporte", "Elektro", "Handel", "Tischlerei", "Installationen"],
           ["Wien", "Graz", "Linz", "Tirol", "Salzburg"]),
    "CH": (3, "EUR", ["AG", "GmbH", "SA", "Sàrl"],
           ["Keller", "Brunner", "Baumann", "Frei", "Favre", "Rochat", "Gerber"],
           ["Präzisionstechnik", "Uhren", "Immobilien", "Chemie", "Consulting"],
           ["Zürich", "Basel", "Bern", "Genève", "Luzern"]),
    "FR": (10, "EUR", ["SARL", "SAS", "SA", "EURL", "SNC"],
           ["Dupont", "Martin", "Bernard", "Dubois", "Lefèvre", "Moreau", "Laurent", "Girard", "Roux",
            "Fournier", "Mercier", "Bonnet", "Lambert", "Rousseau", "Chevalier"],
           ["Électricité", "Boulangerie", "Transports", "Bâtiment", "Menuiserie", "Distribution",
            "Imprimerie", "Matériaux", "Services"],
           ["Lyon", "Marseille", "Bordeaux", "Lille", "Nantes", "Toulouse", "Île-de-France"]),
    "BE": (3, "EUR", ["BV", "NV", "SRL", "SA"],
           ["Peeters", "Janssens", "Maes", "Claes", "Wouters", "Dubois", "Lemaire"],
           ["Bouw", "Transport", "Techniek", "Construction", "Brasserie"],
           ["Antwerpen", "Gent", "Liège", "Brugge"]),
    "NL": (8, "EUR", ["B.V.", "B.V.", "N.V.", "V.O.F."],
           ["Bakker", "De Vries", "Jansen", "Visser", "Smit", "Van den Berg", "Mulder", "De Boer",
            "Vermeulen", "Van Dijk", "Hendriks"],
           ["Installatie", "Groep", "Bouwbedrijf", "Transport", "Techniek", "Handelsonderneming"],
           ["Amsterdam", "Rotterdam", "Utrecht", "Eindhoven", "Groningen"]),
    "IT": (8, "EUR", ["S.p.A.", "S.r.l.", "S.r.l.", "S.n.c.", "S.a.s."],
           ["Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci", "Marino",
            "Greco", "Bruno", "Gallo", "Conti", "De Luca"],
           ["Costruzioni", "Meccanica", "Trasporti", "Arredamenti", "Impianti", "Alimentari",
            "Ceramiche", "Tessile"],
           ["Milano", "Torino", "Bologna", "Napoli", "Veneto", "Firenze"]),
    "ES": (6, "EUR", ["S.L.", "S.L.", "S.A.", "S.L.U."],
           ["García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez", "Pérez",
            "Gómez", "Ruiz"],
           ["Hermanos", "Construcciones", "Distribuciones", "Transportes", "Suministros", "Instalaciones"],
           ["Madrid", "Barcelona", "Valencia", "Sevilla", "Bilbao"]),
    "PT": (2, "EUR", ["Lda.", "S.A.", "Unipessoal Lda."],
           ["Silva", "Santos", "Ferreira", "Pereira", "Oliveira", "Costa"],
           ["Comércio", "Construções", "Têxteis", "Transportes"], ["Lisboa", "Porto", "Braga"]),
    "PL": (5, "EUR", ["Sp. z o.o.", "Sp. z o.o.", "S.A.", "Sp.j."],
           ["Kowalski", "Nowak", "Wiśniewski", "Wójcik", "Kamiński", "Lewandowski", "Zieliński",
            "Szymański", "Dąbrowski"],
           ["Przedsiębiorstwo Handlowe", "Budownictwo", "Transport", "Usługi Techniczne", "Meble",
            "Przetwórstwo Spożywcze"],
           ["Warszawa", "Kraków", "Łódź", "Wrocław", "Poznań", "Gdańsk"]),
    "CZ": (2, "EUR", ["s.r.o.", "a.s."],
           ["Svoboda", "Novák", "Dvořák", "Černý", "Procházka"],
           ["Strojírny", "Stavby", "Doprava", "Obchod"], ["Praha", "Brno", "Ostrava"]),
    "SE": (3, "EUR", ["AB"],
           ["Lindqvist", "Johansson", "Andersson", "Karlsson", "Nilsson", "Eriksson", "Larsson"],
           ["Bygg", "Trä", "Verkstad", "Transport", "Elteknik"], ["Göteborg", "Malmö", "Stockholm", "Norr"]),
    "DK": (3, "EUR", ["A/S", "ApS"],
           ["Hansen", "Jensen", "Nielsen", "Pedersen", "Møller", "Kristensen"],
           ["Logistik", "Maskinfabrik", "Byg", "Handel", "Smedie"], ["København", "Aarhus", "Odense"]),
    "NO": (2, "EUR", ["AS", "ASA"],
           ["Olsen", "Berg", "Haugen", "Johannessen", "Solberg"],
           ["Fjordfrakt", "Bygg", "Sjømat", "Elektro"], ["Bergen", "Oslo", "Tromsø"]),
    "FI": (2, "EUR", ["Oy", "Oyj", "Oy Ab"],
           ["Virtanen", "Korhonen", "Mäkinen", "Nieminen", "Hämäläinen"],
           ["Rakennus", "Kuljetus", "Metalli", "Sähkö"], ["Helsinki", "Tampere", "Oulu"]),
    "GR": (1, "EUR", ["OE", "AE", "EPE"],
           ["Papadopoulos", "Georgiou", "Nikolaidis", "Konstantinou"],
           ["Trading", "Shipping", "Foods"], ["Athens", "Piraeus", "Thessaloniki"]),
    "TR": (1, "EUR", ["A.Ş.", "Ltd. Şti."],
           ["Yılmaz", "Kaya", "Demir", "Şahin", "Çelik"],
           ["Tekstil", "İnşaat", "Gıda", "Otomotiv"], ["İstanbul", "İzmir", "Bursa"]),
    "GB": (6, "EUR", ["Ltd", "Ltd", "PLC", "LLP", "Limited"],
           ["Murphy", "Oak & Pine", "Smith", "Taylor", "Brown", "Harbour", "Evans", "Wilson", "Thompson",
            "Wright", "Walker", "Hughes"],
           ["Brothers", "Engineering", "Logistics", "Trading", "Manufacturing", "Holdings", "Supplies",
            "International"],
           ["London", "Manchester", "Leeds", "Bristol", "Scotland", "Wales"]),
    "US": (9, "USD", ["Inc", "Inc.", "LLC", "Corp.", "Co."],
           ["Blue Harbor", "Summit", "Pacific", "Lakeside", "Johnson", "Miller", "Davis", "Garcia",
            "Anderson", "Redwood", "Liberty", "Great Plains", "Keystone", "Silver Creek"],
           ["Industries", "Supply", "Manufacturing", "Distribution", "Holdings", "Foods", "Electric",
            "Logistics", "International"],
           ["Texas", "Ohio", "West", "East", "Midwest", "California", "Atlanta"]),
    "JP": (2, "EUR", ["KK", "Kabushiki Kaisha", "Co., Ltd."],
           ["Nakamura", "Tanaka", "Yamamoto", "Suzuki", "Watanabe", "Sato", "Kobayashi"],
           ["Trading", "Seiki", "Shoji", "Denki", "Kogyo"], ["Osaka", "Nagoya", "Tokyo"]),
}

LEGAL_VARIANTS: dict[str, list[str]] = {
    "GmbH": ["G.m.b.H.", "GMBH", "Gesellschaft mit beschränkter Haftung", "Ges.m.b.H."],
    "AG": ["Aktiengesellschaft", "A.G."],
    "GmbH & Co. KG": ["GmbH u. Co KG", "GMBH + CO. KG", "GmbH&Co.KG"],
    "KG": ["K.G."], "e.K.": ["eK", "e. K."], "OG": ["O.G."],
    "SA": ["S.A.", "Société Anonyme"], "S.A.": ["SA", "Sociedad Anónima"],
    "SARL": ["S.A.R.L.", "Sàrl", "S.à r.l."], "Sàrl": ["SARL", "S.à r.l."], "SAS": ["S.A.S."],
    "EURL": ["E.U.R.L."], "SNC": ["S.N.C."],
    "BV": ["B.V.", "Besloten Vennootschap"], "B.V.": ["BV", "B V"], "NV": ["N.V."], "N.V.": ["NV"],
    "V.O.F.": ["VOF"], "SRL": ["S.R.L."],
    "S.p.A.": ["SPA", "S.P.A.", "Società per Azioni", "SpA"], "S.r.l.": ["SRL", "S.R.L.", "Srl"],
    "S.n.c.": ["SNC"], "S.a.s.": ["SAS"],
    "S.L.": ["SL", "Sociedad Limitada", "S.L"], "S.L.U.": ["SLU"],
    "Lda.": ["LDA", "Limitada"], "Unipessoal Lda.": ["Unipessoal LDA"],
    "Sp. z o.o.": ["SP Z OO", "SP. Z O.O.", "Spółka z ograniczoną odpowiedzialnością", "Sp.z.o.o."],
    "Sp.j.": ["SPJ", "Spółka Jawna"],
    "s.r.o.": ["sro", "spol. s r.o.", "S.R.O."], "a.s.": ["as", "A.S."],
    "AB": ["Aktiebolag", "Aktiebolaget"], "A/S": ["AS", "A.S."], "ApS": ["APS"], "AS": ["A/S", "A.S."],
    "ASA": ["A.S.A."], "Oy": ["OY", "Osakeyhtiö"], "Oyj": ["OYJ"], "Oy Ab": ["OY AB", "Oy"],
    "OE": ["O.E."], "AE": ["A.E."], "EPE": ["E.P.E."],
    "A.Ş.": ["AS", "A.S.", "Anonim Şirketi"], "Ltd. Şti.": ["LTD STI", "Limited Şirketi"],
    "Ltd": ["Limited", "Ltd.", "LTD"], "Limited": ["Ltd", "Ltd."], "PLC": ["P.L.C.", "plc"], "LLP": ["L.L.P."],
    "Inc": ["Inc.", "Incorporated", "INC"], "Inc.": ["Inc", "Incorporated"], "LLC": ["L.L.C.", "Llc"],
    "Corp.": ["Corporation", "Corp"], "Co.": ["Company", "Co"],
    "KK": ["K.K.", "Kabushiki Kaisha", "Co., Ltd."], "Kabushiki Kaisha": ["KK", "K.K."],
    "Co., Ltd.": ["Co Ltd", "KK", "Company Limited"],
}

ABBREVIATIONS: dict[str, str] = {
    "Maschinenbau": "Maschb.", "Elektrotechnik": "Elektrotech.", "Brothers": "Bros", "International": "Intl",
    "Hermanos": "Hnos", "Costruzioni": "Costr.", "Manufacturing": "Mfg", "Distribution": "Distr.",
    "Logistics": "Log.", "Logistik": "Log.", "Transportes": "Transp.", "Transports": "Transp.",
    "Engineering": "Eng.", "Industries": "Ind.", "Holdings": "Hldgs", "Trading": "Trdg",
    "Przedsiębiorstwo Handlowe": "PH", "Installatie": "Inst.", "Distribuciones": "Distrib.",
    "Construcciones": "Const.", "Handelsonderneming": "Handelsond.", "Services": "Svcs",
}
CONNECTORS = {"&": ["and", "und", "et", "i", "y", "e", "+", "og", "en"]}

PEOPLE = ["J. SMITH", "MARIA GARCIA LOPEZ", "KLAUS WEBER", "ANNA KOWALSKA", "PIERRE MARTIN", "JOHN DOE",
          "LARS NIELSEN", "GIULIA ROSSI", "JAN DE JONG", "HR. THOMAS BECKER", "MME SOPHIE DURAND",
          "ROBERT JOHNSON", "EMMA VIRTANEN", "TARO SUZUKI"]
SUPPLIERS = ["Office Depot Europe B.V.", "Würth Handelsgesellschaft mbH", "Staples Solutions", "Rexel France",
             "Brammer Buck & Hickman", "Lyreco Deutschland GmbH", "Hilti AG", "RS Components Ltd"]


def fold(text: str) -> str:
    """SEPA character set: accents stripped, ß/ø/æ/ł/ı spelt out, upper case (what many banks send)."""
    special = {"ß": "ss", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "ł": "l", "Ł": "L", "ı": "i",
               "đ": "d", "Đ": "D", "İ": "I", "ş": "s", "Ş": "S"}
    text = "".join(special.get(ch, ch) for ch in text)
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text if not unicodedata.combining(ch)).upper()


def umlauts(text: str) -> str:
    """German-style transliteration: Müller -> MUELLER."""
    for a, b in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("Ä", "AE"), ("Ö", "OE"), ("Ü", "UE"), ("ß", "ss")):
        text = text.replace(a, b)
    return fold(text)


def make_name(rng: random.Random, country: str) -> tuple[str, str, str]:
    """(full legal name, core without legal form, legal form)."""
    _, _, legal, surnames, trades, places = COUNTRIES[country]
    form = rng.choice(legal)
    s, t = rng.choice(surnames), rng.choice(trades)
    pattern = rng.random()
    if pattern < 0.40:
        core = f"{s} {t}"
    elif pattern < 0.55:
        other = rng.choice([x for x in surnames if x != s] or surnames)
        core = f"{s} & {other}"
    elif pattern < 0.70:
        core = f"{t} {s}"
    elif pattern < 0.85:
        core = f"{s} {t} {rng.choice(places)}"
    else:  # long names: these are the ones banks truncate
        t2 = rng.choice([x for x in trades if x != t] or trades)
        p1, p2 = rng.sample(places, 2)
        core = f"{s} {t} und {t2} {p1}" if country in ("DE", "AT") else f"{s} {t} {t2} {p1} {p2}"
    return f"{core} {form}", core, form


def variant(rng: random.Random, name: str, core: str, form: str, kind: str) -> str:
    """A payer name as a bank might deliver it for customer `name` (kind names the mangling)."""
    if kind == "suffix":
        choices = [*LEGAL_VARIANTS.get(form, []), ""]
        new = rng.choice(choices)
        return fold(f"{core} {new}".strip()) if rng.random() < 0.6 else f"{core} {new}".strip()
    if kind == "umlaut":
        return umlauts(name)
    if kind == "word_order":
        words = core.split()
        if len(words) < 2:
            return fold(name)
        cut = rng.randrange(1, len(words))
        return fold(" ".join(words[cut:] + words[:cut]) + " " + form)
    if kind == "abbreviation":
        out = core
        for long, short in ABBREVIATIONS.items():
            out = out.replace(long, short)
        if out == core and "&" in core:
            out = core.replace("&", rng.choice(CONNECTORS["&"]))
        if out == core:
            words = core.split()
            out = " ".join([words[0][0] + "."] + words[1:]) if len(words) > 1 else core
        return fold(f"{out} {form}")
    if kind == "typo":
        words = name.split()
        long_words = [i for i, w in enumerate(words) if len(w) >= 5]
        i = rng.choice(long_words) if long_words else 0
        w = words[i]
        p = rng.randrange(1, len(w) - 1) if len(w) > 2 else 0
        op = rng.random()
        if op < 0.35:
            w = w[:p] + w[p + 1:]
        elif op < 0.7 and p + 1 < len(w):
            w = w[:p] + w[p + 1] + w[p] + w[p + 2:]
        else:
            w = w[:p] + w[p] + w[p:]
        words[i] = w
        return fold(" ".join(words))
    if kind.startswith("truncate"):
        limit = int(kind[len("truncate"):])
        return fold(name)[:limit]
    raise ValueError(kind)
