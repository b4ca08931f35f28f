"""8-bit tags in the code page of the tagger's system (Windows-1251 Russian, Shift-JIS Japanese, GBK Chinese...)
are read as written, not as mojibake: real names in each encoding, written into real files (ID3v2 frames
declared Latin-1, ID3v1, RIFF INFO, a Vorbis comment), come back right. Genuine Western European text stays
as it is, and UTF-8 always wins.

Some short names are byte for byte a plausible name in another code page too; they are listed in
:data:`MISREAD` with what they read as, and the rate each row of the table reads back is in its comment.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from audio_corpus import Spec, apev2, id3v1, riff_info, write
from hypothesis import given, settings
from hypothesis import strategies as st
from mutagen.flac import FLAC
from mutagen.id3 import ID3, TALB, TIT2, TPE1

from training.tags import read_tags
from training.text_encoding import decode_8bit

# (code page, names): artists and albums as they appear in these languages' libraries
TABLE: dict[str, tuple[str, list[str]]] = {
    # 15/15
    "Russian": ("cp1251", ["Кино", "Земфира", "Сплин", "Ария", "Звёздочка", "Группа крови", "Король и Шут", "ДДТ",
                           "Мумий Тролль", "Наутилус Помпилиус", "Аквариум", "Машина времени", "Любэ", "Ленинград",
                           "Гражданская оборона"]),
    # 12/12
    "Ukrainian": ("cp1251", ["Океан Ельзи", "Бумбокс", "Друга Ріка", "Скрябін", "Воплі Відоплясова", "Їжак",
                             "ДахаБраха", "Кому вниз", "Тартак", "Вій", "Мертвий півень", "Гайдамаки"]),
    # 11/18: Czech and Polish letters that read as Western ones in Windows-1252 (č è, ě ì, ń ñ, ř ø, Ś Œ) stay so
    "Czech/Polish": ("cp1250", ["Čechomor", "Kryštof", "Dusilová", "Łzy", "Dżem", "Żywiołak", "Hańba!", "Kabát",
                                "Pražský výběr", "Wańka Wstańka", "Ścianka", "Věra Bílá", "Hudba Praha",
                                "Bára Basiková", "Chłopcy z Placu Broni", "Republika – Nowe sytuacje",
                                "Lady Pank – Zawsze tam gdzie ty", "Michal David – Céčka, sbírám céčka"]),
    # 7/8
    "Greek": ("cp1253", ["Σωκράτης", "Χάρις Αλεξίου", "Άννα Βίσση", "Μίκης Θεοδωράκης", "Βασίλης Παπακωνσταντίνου",
                         "Ελευθερία Αρβανιτάκη", "Πυξ Λαξ", "Ξύλινα Σπαθιά"]),
    # 7/7
    "Hebrew": ("cp1255", ["עומר אדם", "אריק איינשטיין", "שלמה ארצי", "כוורת", "משינה", "עידן רייכל", "נועה קירל"]),
    # 6/6
    "Arabic": ("cp1256", ["فيروز", "عمرو دياب", "أم كلثوم", "كاظم الساهر", "نانسي عجرم", "عبد الحليم حافظ"]),
    # 12/12
    "Japanese": ("cp932", ["宇多田ヒカル", "椎名林檎", "坂本龍一", "きゃりーぱみゅぱみゅ", "ゆらゆら帝国", "東京事変",
                           "スピッツ", "美空ひばり", "サザンオールスターズ", "中島みゆき", "ボアダムス", "少年ナイフ"]),
    # 8/12: GBK pairs are EUC-KR Hangul pairs too, and 2-3 characters rarely tell them apart
    "Chinese (GBK)": ("gbk", ["周杰伦", "王菲", "邓丽君", "五月天", "窦唯", "崔健", "黑豹乐队", "唐朝乐队", "张国荣",
                              "那英", "许巍", "朴树"]),
    # 10/12
    "Chinese (Big5)": ("big5", ["周杰倫", "王菲", "鄧麗君", "五月天", "張學友", "羅大佑", "蘇打綠", "陳綺貞", "伍佰",
                                "張惠妹", "林憶蓮", "李宗盛"]),
    # 12/12
    "Korean": ("euc_kr", ["서태지와 아이들", "이문세", "조용필", "아이유", "빅뱅", "김광석", "산울림", "소녀시대",
                          "들국화", "신중현", "넬", "장기하와 얼굴들"]),
    # 55/55
    "Western": ("cp1252", ["Motörhead", "Café Tacvba", "Sigur Rós", "Beyoncé", "Ærø", "Björk", "Mötley Crüe",
                           "Françoise Hardy", "Édith Piaf", "Léo Ferré", "Øystein Sunde", "Sinéad O’Connor",
                           "Für Elise", "Maná", "Héroes del Silencio", "Mägo de Oz", "Ça plane pour moi", "Rammstein",
                           "Hüsker Dü", "Blue Öyster Cult", "Queensrÿche", "Zoé", "Señor Coconut", "Jóhann Jóhannsson",
                           "Ólafur Arnalds", "Die Ärzte", "Sébastien Tellier", "Mañana", "L’Âme Immortelle", "Niño",
                           "Ñu", "Ça", "Åge Aleksandersen", "Röyksopp", "Ane Brun – Ævig", "Gåte",
                           "Garmarna – Vedergällningen", "Sinéad O’Connor – “Nothing Compares”", "¿Dónde Están?",
                           "¡Viva!", "Café del Mar… Vol. 5", "«Ça ira»", "20° Celsius", "© 2001 Naïve",
                           "Mega Hits™ 2002", "Paral·lel", "Canções", "Þórður", "São Paulo", "Œuvre", "L’Été indien",
                           "Groß – Stadt", "Fête de la Musique ’99", "A Tribute to Ñu (Ed. £5)", "µ-Ziq"]),
}  # fmt: skip

# What the names that are also a plausible name in another code page read as (measured on this table)
MISREAD = {
    "Čechomor": "Èechomor",
    "Hańba!": "Hañba!",
    "Pražský výběr": "Pražský výbìr",
    "Wańka Wstańka": "Wañka Wstañka",
    "Ścianka": "Œcianka",
    "Věra Bílá": "Vìra Bílá",
    "Michal David – Céčka, sbírám céčka": "Michal David – Céèka, sbírám céèka",
    "Πυξ Λαξ": "Рхо Лбо",  # Windows-1251
    "周杰伦": "ЦЬЅЬВЧ",  # Windows-1251
    "邓丽君": "됩쟝엌",  # EUC-KR
    "崔健": "달숯",
    "黑豹乐队": "붚괭있뚠",
    "陳綺貞": "朝忽璼",  # GBK
    "林憶蓮": "狶拘浆",
}
ROWS = [(language, code_page, name) for language, (code_page, names) in TABLE.items() for name in names]
MP3 = Spec("mp3", "libmp3lame", "fltp", 22050, "mono", 0.3)
WAV = Spec("wav", "pcm_s16le", "s16", 8000, "mono", 0.3)


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("plain")
    mp3 = write(folder / "plain.mp3", MP3).read_bytes()
    return {"mp3": mp3[mp3.index(b"\xff") :], "wav": write(folder / "plain.wav", WAV).read_bytes()}


def _expected(name: str) -> str:
    return MISREAD.get(name, name)


def _read_back(folder: Path, plain: dict[str, bytes], container: str, code_page: str, name: str) -> str | None:
    """``name`` written in ``code_page`` as the artist of a file in ``container``, read back."""
    if container == "id3v2":
        path = folder / "song.mp3"
        path.write_bytes(plain["mp3"])
        tags = ID3()
        tags.add(TPE1(encoding=0, text=name.encode(code_page).decode("latin-1")))  # the bytes the tagger wrote
        tags.save(path, v2_version=3)
    elif container == "id3v1":
        path = folder / "song.mp3"
        path.write_bytes(plain["mp3"] + id3v1("Song", name, encoding=code_page))
    elif container == "apev2":
        path = folder / "song.mp3"
        path.write_bytes(plain["mp3"] + apev2({"Artist": name}, code_page))
    else:
        path = folder / "song.wav"
        path.write_bytes(plain["wav"])
        riff_info(path, {"artist": name}, "utf-16" if container == "riff-utf16" else code_page)
    return read_tags(path).artist


@pytest.mark.parametrize("container", ["id3v2", "id3v1", "riff", "apev2"])
def test_names_in_legacy_code_pages_read_back(tmp_path, plain, container):
    """Every name of the table in its code page in an ID3v2.3 frame declared Latin-1, an ID3v1 tag, RIFF INFO, an
    APEv2 tag (UTF-8 by its specification, the system's code page by some taggers)."""
    rows = [row for row in ROWS if container != "id3v1" or len(row[2].encode(row[1])) <= 30]  # ID3v1: 30 bytes
    got = {name: _read_back(tmp_path, plain, container, code_page, name) for _, code_page, name in rows}
    assert got == {name: _expected(name) for _, _, name in rows}


@pytest.mark.parametrize(
    ("code_page", "title"),
    [
        ("cp932", "サザンオールスターズ - 真夏の果実"),
        ("gbk", "张学友 - 吻别 (国语版本) 1993年"),
        ("euc_kr", "서태지와 아이들 - 난 알아요! 하여가"),
        ("utf-8", "Гражданская оборона – Всё идёт по плану"),
        ("cp1251", "Гражданская оборона – Всё идёт по плану"),
    ],
)
def test_id3v1_fields_cut_inside_a_character_keep_the_whole_ones(tmp_path, plain, code_page, title):
    """ID3v1 cuts a field at 30 bytes, in the middle of a 2-byte character too: the whole characters before the
    cut are read, and the cut field does not make the file's other fields unreadable in its code page."""
    path = tmp_path / "song.mp3"
    path.write_bytes(plain["mp3"] + id3v1(title, "Artist", "Album", encoding=code_page))
    whole = max((title[:n] for n in range(len(title) + 1) if len(title[:n].encode(code_page)) <= 30), key=len)
    assert code_page == "cp1251" or len(whole.encode(code_page)) < 30 < len(title.encode(code_page))  # a cut one
    assert read_tags(path).title == whole.strip()


def test_utf16_riff_info_reads_back_every_name(tmp_path, plain):
    """RIFF INFO in UTF-16 with a byte-order mark (some Windows taggers): exact for every script, no guessing."""
    got = {name: _read_back(tmp_path, plain, "riff-utf16", "", name) for _, _, name in ROWS}
    assert got == {name: name for _, _, name in ROWS}


def test_an_apev2_tag_with_utf8_and_legacy_items_reads_both(tmp_path, plain):
    """mutagen refuses a whole APEv2 tag for one item that is not UTF-8: each is read, UTF-8 or not, before an
    ID3v1 tag too, and a tag cut short keeps the items before the cut."""
    path = tmp_path / "song.mp3"
    legacy = apev2({"Artist": "Кино", "Album": "Группа крови"}, "cp1251")
    utf8 = apev2({"Title": "Звезда по имени Солнце", "Genre": "Rock\0Post-Punk", "Year": "1988"})
    path.write_bytes(plain["mp3"] + legacy + utf8 + id3v1())
    tags = read_tags(path)
    assert (tags.title, tags.genres, tags.year) == ("Звезда по имени Солнце", ("Rock",), 1988)  # the last tag's
    path.write_bytes(plain["mp3"] + legacy)
    assert (read_tags(path).artist, read_tags(path).album) == ("Кино", "Группа крови")
    cut = bytearray(legacy)
    cut[len(legacy) - 32 + 16 : len(legacy) - 32 + 20] = (3).to_bytes(4, "little")  # a count past its items
    path.write_bytes(plain["mp3"] + bytes(cut))
    assert (read_tags(path).artist, read_tags(path).album) == ("Кино", "Группа крови")


def test_one_files_fields_are_read_in_one_code_page(tmp_path, plain):
    """The fields of one tag were written by one tagger in one code page: decided together, the album's title
    settles what the short artist name alone cannot (Greek "Πυξ Λαξ" is Windows-1251 "Рхо Лбо" on its own)."""
    path = tmp_path / "song.mp3"
    path.write_bytes(plain["mp3"])
    tags = ID3()
    for frame, text in ((TPE1, "Πυξ Λαξ"), (TALB, "Ζωάκια"), (TIT2, "Μου λείπει η ζωή")):
        tags.add(frame(encoding=0, text=text.encode("cp1253").decode("latin-1")))
    tags.save(path, v2_version=3)
    read = read_tags(path)
    assert (read.artist, read.album, read.title) == ("Πυξ Λαξ", "Ζωάκια", "Μου λείπει η ζωή")


@pytest.mark.parametrize(
    "fields",
    [
        ("Motörhead", "Ace of Spades", "Ää"),
        ("Björk", "Jóga", "Öö"),
        ("Björk", "Þá"),
        ("Sigur Rós", "Ágætis byrjun", "Æ"),
        ("Mötley Crüe", "Dr. Feelgood", "ÆØÅ"),
    ],
)
def test_a_short_accented_word_does_not_turn_a_western_files_names_into_another_script(fields):
    """A word of accented letters only ("Öö", Estonian for night) fails the Windows-1252 rules, so the file's
    other code pages are tried; none may win by reading a Western name's letters as vowel signs of another
    script (Windows-1256 read "Björk" as "Bj" + kasra + "rk" and "Öö" as Arabic)."""
    assert decode_8bit([text.encode("cp1252") for text in fields]) == list(fields)


def test_vorbis_comment_in_a_legacy_code_page_is_read_from_its_bytes(tmp_path):
    """mutagen replaces a Vorbis comment's bytes that are not UTF-8 with U+FFFD; FFmpeg keeps them."""
    path = write(tmp_path / "song.flac", Spec("flac", "flac", "s16", 8000, "mono", 0.3))
    raw = "Земфира".encode("cp1251")
    tags = FLAC(path)
    tags["artist"], tags["album"] = "\x01" * len(raw), "Прости меня моя любовь"
    tags.save()
    path.write_bytes(path.read_bytes().replace(b"\x01" * len(raw), raw))  # what a tagger without UTF-8 wrote
    assert "\ufffd" in FLAC(path)["artist"][0]
    read = read_tags(path)
    assert (read.artist, read.album) == ("Земфира", "Прости меня моя любовь")


def test_riff_info_reader_is_strict(tmp_path, plain):
    """A chunk cut short by the file's end is left out (to FFmpeg, which reads what is there), the ones before it
    stay; other files give nothing."""
    path = tmp_path / "song.wav"
    path.write_bytes(plain["wav"])
    riff_info(path, {"title": "Звезда", "artist": "Кино"}, "cp1251")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(path.read_bytes()[:-3])  # "о", the NUL and the pad byte of IART
    assert (read_tags(path).title, read_tags(path).artist) == ("Звезда", "Кино")
    assert (read_tags(cut).title, read_tags(cut).artist) == ("Звезда", "Кин")
    mp3 = tmp_path / "song.mp3"
    mp3.write_bytes(plain["mp3"])
    assert read_tags(mp3).artist is None


# Western European letters: every letter Windows-1252 has but ƒ and ˆ (a florin sign and a modifier)
WESTERN = "".join(c for c in bytes(range(0x80, 0x100)).decode("cp1252", "ignore") if c.isalpha() and c not in "ƒˆ")
LETTER = st.sampled_from(WESTERN) | st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
# a word of two letters or more holds an unaccented one, as in every Western European language
WORD = st.text(LETTER, min_size=1, max_size=12).filter(lambda word: len(word) == 1 or any(c.isascii() for c in word))
# 30 bytes are left out: such a text may be an ID3v1 field cut inside a character (see the ID3v1 test above)
WESTERN_TEXT = st.lists(WORD, min_size=1, max_size=6).map(" ".join).filter(lambda text: len(text) != 30)


@settings(max_examples=400, deadline=None)
@given(text=WESTERN_TEXT)
def test_western_european_text_in_windows_1252_stays_as_it_is(text):
    """Unless its bytes are valid UTF-8 too ("ÎœPT" is "ΜPT"), which is read first: 0.14% of these texts."""
    raw = text.encode("cp1252")
    try:
        expected = raw.decode("utf-8")
    except UnicodeDecodeError:
        expected = text
    assert decode_8bit([raw]) == [expected]


@settings(max_examples=400, deadline=None)
@given(texts=st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=4), legacy=st.sampled_from(ROWS))
def test_utf8_always_reads_as_utf8(texts, legacy):
    """UTF-8 text comes back as it is, also beside legacy text of the same tag (one code page is chosen for it)."""
    _, code_page, name = legacy
    decoded = decode_8bit([t.encode("utf-8") for t in texts] + [name.encode(code_page)])
    assert decoded[:-1] == texts
    assert decoded[-1] == _expected(name)
