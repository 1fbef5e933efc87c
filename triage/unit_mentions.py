"""Unit names in a text: every unit a reply or an appeal names, with its standard name and place.

``find_units`` reads, in reading order:

- departments, by the spellings replies use (``住房和城乡建设局``, ``住建委`` -> ``住建局``), with
  the place before them (``A3区住建局``, ``岳麓区教育局``; ``市公安局交通警察支队`` ->
  ``市交警支队``);
- local units named by a place word: streets, towns, townships, communities, villages and police
  stations (``洋湖街道`` -> ``洋湖街道办事处``, ``白马渡镇`` -> ``白马渡镇人民政府``);
- ``我局`` / ``我街道`` / ``我镇``: a unit speaking as itself, which
  ``triage.reply_units`` resolves to a unit named elsewhere in the reply;
- other bodies ending in 局/中心/大队 ... (信访局, 房屋交易管理中心), named by the words before them
  and kept only when they have a kind (``triage.unit_kinds.unit_category``).

It also reads the district or county a text names (``county_of``) and the street, town or
township it names most often (``bare_local``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from triage.unit_kinds import unit_category

__all__ = [
    "LOCAL_BODY", "PLACE_CODE", "UnitMention", "bare_local", "clean_reply", "county_of",
    "find_units", "local_units",
]

# Standard short body -> the spellings found in replies (longest spelling wins when matching).
_DEPARTMENTS: dict[str, tuple[str, ...]] = {
    "住建局": ("住房和城乡建设局", "住房城乡建设局", "住房与城乡建设局", "住房和城乡建设委员会",
            "住房城乡建设委员会", "城乡建设委员会", "住建委", "住建局", "城乡建设局", "城建局", "建设局",
            "建委"),
    "规划建设局": ("规划建设局", "规建局"),
    "房产局": ("房地产管理局", "房产管理局", "房屋管理局", "房产局", "房管局", "住房保障局",
            "住房保障服务中心", "住保局"),
    "教育局": ("教育体育局", "教育和体育局", "教育局", "教体局", "教育委员会", "教委"),
    "公安分局": ("公安分局",),
    "公安局": ("公安局",),
    "交警支队": ("交通警察支队", "交警支队"),
    "交警大队": ("交通警察大队", "交警大队"),
    "人社局": ("人力资源和社会保障局", "人力资源社会保障局", "人力资源与社会保障局", "人社局",
            "劳动和社会保障局", "劳动保障局", "人力资源局", "人事局"),
    "社保中心": ("社会保险管理服务中心", "社会保险服务中心", "社会保险中心", "社保中心",
             "社会保险管理服务局", "社会保险局", "社保局", "社保卡服务中心", "社保卡管理中心",
             "社保卡中心"),
    "卫健委": ("卫生健康委员会", "卫生和计划生育委员会", "卫生计生委员会", "卫生健康委", "卫健委",
            "卫计委", "卫生计生委", "卫生和计划生育局", "卫生计生局", "卫生局", "卫健局", "卫计局"),
    "疾控中心": ("疾病预防控制中心", "疾控中心"),
    "交通运输局": ("交通运输委员会", "交通运输局", "交通局", "交委"),
    "运管处": ("道路运输管理处", "运输管理处", "运管处", "运管局"),
    "公路局": ("公路管理局", "公路局"),
    "生态环境局": ("生态环境局", "生态环境分局", "环境保护局", "环境保护分局", "环保局", "环保分局"),
    "市场监管局": ("市场监督管理局", "市场监管局", "市监局", "工商行政管理局", "工商局", "工商分局",
              "食品药品监督管理局", "食品药品监管局", "食药监局", "质量技术监督局", "质监局", "物价局"),
    "自然资源和规划局": ("自然资源和规划局", "规划和自然资源局", "自然资源局", "国土资源局", "国土资源分局",
                 "国土局", "国土分局", "城乡规划局", "规划局", "规划分局"),
    "不动产登记中心": ("不动产登记中心",),
    "城管局": ("城市管理和综合执法局", "城市管理综合执法局", "城市管理和行政执法局", "城市管理行政执法局",
            "城市管理局", "城管执法局", "城管局", "行政执法局", "综合执法局", "城管执法大队",
            "城管大队", "执法大队", "执法局"),
    "市政局": ("市政设施管理局", "市政管理局", "市政局"),
    "环卫局": ("环境卫生管理局", "环卫局"),
    "水务局": ("水利水务局", "水务局", "水利局"),
    "商务局": ("商务和粮食局", "商务粮食局", "商务局"),
    "文旅局": ("文化旅游广电体育局", "文化和旅游局", "文化旅游局", "文体广电新闻出版局",
            "文化广电新闻出版局", "文体广新局", "文广新局", "文旅局", "文体局", "文化局", "旅游局",
            "广电局"),
    "民政局": ("民政局",),
    "税务局": ("税务局", "税务分局", "地税局", "国税局"),
    "发改委": ("发展和改革委员会", "发展改革委员会", "发展和改革委", "发展改革委", "发改委",
            "发展和改革局", "发展改革局", "发改局"),
    "农业农村局": ("农业农村委员会", "农业农村局", "农业委员会", "农业局", "农委", "农村工作局", "林业局",
              "畜牧兽医水产局", "畜牧水产局", "畜牧局", "水产局", "农林局"),
    "医保局": ("医疗保障局", "医保局", "医疗保险管理服务局", "医疗保险管理局", "医疗保险局"),
    "医保中心": ("医疗保险管理服务中心", "医疗保险管理中心", "医疗保险服务中心", "医疗保险中心",
             "医保中心"),
    "公积金中心": ("住房公积金管理中心", "公积金管理中心", "住房公积金中心", "公积金中心"),
    "财政局": ("财政局",),
    "信访局": ("信访局",),
    "司法局": ("司法局",),
    "应急管理局": ("应急管理局", "安全生产监督管理局", "安监局"),
    "消防大队": ("消防大队",),
    "消防支队": ("消防支队",),
}
# Bodies that name the 城管局 only when nothing but a place stands before them.
_NEEDS_EDGE = {"行政执法局", "综合执法局", "执法局", "执法大队", "城管大队", "建设局", "建委", "交委"}
_BODY_OF = {raw: std for std, raws in _DEPARTMENTS.items() for raw in raws}

_CJK = "\u4e00-\u9fff\u3400-\u4dbf"
# A place code of the anonymised data before a unit (A3区, K11县, A市; 市 alone is no code).
PLACE_CODE = r"[A-Z]\d{0,2} ?[省市区县州]"
_DEPT = re.compile(
    rf"(?P<place>(?:{PLACE_CODE})+|[省市区县])?"
    rf"(?P<body>{'|'.join(sorted(_BODY_OF, key=len, reverse=True))})"
)
# Local units named by a place word: streets, towns, townships, communities, villages, stations.
_LOCAL = re.compile(
    r"街道办事处|街道办|街道|镇人民政府|镇党委政府|镇党委|镇政府|乡人民政府|乡党委政府|乡党委|乡政府|"
    r"社区居委会|社区居民委员会|社区|村村委会|村民委员会|村委会|派出所"
)
_LOCAL_KIND = {"街": "street", "镇": "town", "乡": "township", "社": "community", "村": "village",
               "派": "police"}
# The standard body of each kind of local unit.
LOCAL_BODY: dict[str, str] = {"street": "街道办事处", "town": "镇人民政府", "township": "乡人民政府",
                              "community": "社区", "village": "村委会", "police": "派出所"}
_SELF = re.compile(r"我(街道办事处|街道办|街道|局|委|中心|大队|支队|镇|乡|所)")
_SELF_KIND = {"街道办事处": "street", "街道办": "street", "街道": "street", "镇": "town",
              "乡": "township", "所": "police"}
_GENERIC = re.compile(r"局|委员会|管理处|中心|大队|支队")
_GENERIC_JUNK = re.compile(r"布局|格局|党委|纪委|业委|两委|常委|管委|中心城|服务站|我")

# Characters and words that start a clause rather than a place name (经同升街道 -> 同升街道).
_STOP_CHARS = set("经由与和及、在对向转交是的地了将请到为从至各该本我您原属据即并于把被给让使就也都已均或"
                  "以其前后内外这那每个省市区县有无按照等所成者")
_STOP_NAMES = {"乡镇", "城区", "所在", "辖区", "属地", "相关", "当地", "有关", "各个", "农村", "城市",
               "街道", "社区", "问题", "居民", "全市", "全区", "全县", "集镇", "城镇", "村镇", "目前", "现在",
               "正在", "近期", "当前", "同时", "今年", "去年", "立即", "联系", "咨询", "致电"}
_MIDDLE_STOP = set("的了在是与及对将已被把从给让使就也都或经于")
_VERB_ENDS = ("联合", "协调", "配合", "组织", "通知", "要求", "督促", "会同", "整治", "责成", "安排",
              "负责", "协助", "落实")
_GENERIC_STOP = (_STOP_CHARS - set("市区县省有无")) | set("了派安排装置全部请向给让")


@dataclass(frozen=True)
class UnitMention:
    """One unit named in a text: its span, standard name, kind, place and place-free body.

    ``kind`` is the suffix family used to resolve ``我局`` / ``我镇``: 局, 委, 中心, 大队, 支队, 处,
    street, town, township, community, village, police; ``self`` marks ``我X`` itself (its
    ``name`` then holds the family it speaks for). ``generic`` names come from the fallback reading
    of other bodies (信访局, 房屋交易管理中心) and count only when nothing else is named.
    """

    start: int
    end: int
    name: str
    kind: str
    place: str = ""
    body: str = ""
    generic: bool = False


def _kind_of(body: str) -> str:
    for suffix in ("委员会", "中心", "大队", "支队", "局", "委", "处"):
        if body.endswith(suffix):
            return "委" if suffix == "委员会" else suffix
    return "局"


def _code_before(text: str, start: int) -> re.Match[str] | None:
    return re.search(f"(?:{PLACE_CODE})+$", text[:start])


def _local_name(text: str, end: int) -> tuple[int, str]:
    """Start and text of the place word (2 to 3 characters, or ``""``) that ends at ``end``."""
    start = end
    while start > end - 4 and start > 0 and re.match(f"[{_CJK}]", text[start - 1]):
        start -= 1
    name = text[start:end]
    cut = max(name.rfind(s) + len(s) if s in name else 0 for s in ("街道", "镇", "乡"))
    if 0 < cut <= len(name) - 2:  # 月亮岛街道桑梓社区 -> 桑梓
        name, start = name[cut:], start + cut
    if len(name) == 4 and not _code_before(text, start):
        name, start = name[1:], start + 1
    while len(name) > 2 and (name[0] in _STOP_CHARS or name[:2] in _STOP_NAMES):
        cut = 2 if name[:2] in _STOP_NAMES else 1  # 经同升 -> 同升, but 和平 stays 和平
        name, start = name[cut:], start + cut
    if (len(name) < 2 or name in _STOP_NAMES or name.endswith(_VERB_ENDS) or "乡镇" in name
            or "小区" in name
            or any(c in _MIDDLE_STOP for c in name[1:]) or name[0] in _STOP_CHARS - set("和平东西南北")):
        return end, ""
    return start, name


_NOT_DISTRICT = {"小区", "社区", "园区", "景区", "校区", "片区", "辖区", "市区", "郊区", "山区", "林区",
                 "矿区", "库区", "湖区", "老区"}


def _named_district(text: str, end: int) -> str:
    """A district or county named in words that ends at ``end`` (东城区, 岳麓区), or ``""``."""
    if end < 3 or text[end - 1] not in "区县":
        return ""
    name = text[end - 3 : end]
    before = text[end - 4 : end - 3]
    boundary = not before or not re.match(f"[{_CJK}]", before) or before in _STOP_CHARS
    if not re.fullmatch(f"[{_CJK}]{{2}}[区县]", name) or not boundary or name[1:] in _NOT_DISTRICT \
            or any(c in _STOP_CHARS for c in name[:2]):
        return ""
    return name


def _departments(text: str) -> list[UnitMention]:
    out = []
    for m in _DEPT.finditer(text):
        start, place = m.start(), (m.group("place") or "").replace(" ", "")
        before = text[start - 1 : start]
        if m.group("body") in _NEEDS_EDGE and re.match(f"[{_CJK}]", before) \
                and before not in _STOP_CHARS:
            continue  # 交通行政执法局 is not the 城管局: left to the generic reading
        if place in {"区", "县"}:  # a named district: 岳麓区教育局, 东城区城管局
            named = _named_district(text, start + 1)
            start, place = (start - 2, named) if named else (start, place)
        if not place and out and out[-1].end == start:  # 市公安局交通警察支队 -> 市交警支队
            place = out[-1].place
        body = _BODY_OF[m.group("body")]
        out.append(UnitMention(start, m.end(), place + body, _kind_of(m.group("body")), place, body))
    return out


def local_units(text: str) -> list[UnitMention]:
    """The streets, towns, townships, communities, villages and police stations a text names."""
    out = []
    for m in _LOCAL.finditer(text):
        suffix = m.group(0)
        kind = "village" if suffix.startswith("村") else _LOCAL_KIND[suffix[0]]
        start, name = _local_name(text, m.start())
        code = _code_before(text, start)
        if not name and not (code and code.end() == m.start() and kind in {"street", "town"}):
            continue  # a bare 街道 / 社区 of no named place is a word, not a unit
        place = code.group(0).replace(" ", "") if code else _named_district(text, start)
        if place and not code:
            start -= len(place)
        body = name.removesuffix("村") + "村村委会" if kind == "village" else name + LOCAL_BODY[kind]
        out.append(UnitMention(code.start() if code else start, m.end(), place + body, kind, place,
                               LOCAL_BODY[kind]))
    return out


def _selves(text: str) -> list[UnitMention]:
    out = []
    for m in _SELF.finditer(text):
        kind = _SELF_KIND.get(m.group(1), _kind_of(m.group(1)))
        out.append(UnitMention(m.start(), m.end(), kind, "self"))
    return out


def _generic(text: str, taken: list[tuple[int, int]]) -> list[UnitMention]:
    """Other bodies ending in 局/中心/大队 ... (信访局, 房屋交易管理中心), named by the words before."""
    out = []
    for m in _GENERIC.finditer(text):
        if any(a <= m.start() < b for a, b in taken):
            continue
        start = m.start()
        while (start > m.start() - 10 and start > 0 and re.match(f"[{_CJK}]", text[start - 1])
               and text[start - 1] not in _GENERIC_STOP):
            start -= 1
        words = text[start : m.start()]
        verb = max((words.rfind(v) + 2 for v in _VERB_ENDS if v in words), default=0)
        words, start = words[verb:], start + verb  # 配合市劳动监察大队 -> 市劳动监察大队
        code = _code_before(text, start)
        place = code.group(0).replace(" ", "") if code else ""
        if words[:1] in {"市", "区", "县", "省"}:
            place, words = place + words[0], words[1:]
        if len(words) < 2 or _GENERIC_JUNK.search(words + m.group(0)) \
                or not unit_category(words + m.group(0)):
            continue  # an untyped body read this way is mostly noise (分管副局, 家长委员会)
        out.append(UnitMention(code.start() if code else start, m.end(), place + words + m.group(0),
                               _kind_of(m.group(0)), place, words + m.group(0), True))
    return out


def find_units(text: str) -> list[UnitMention]:
    """Every unit named in ``text`` (and every ``我局``-style self-reference), in reading order.

    Example:
        >>> [u.name for u in find_units("经A3区住房和城乡建设局核实，洋湖街道已处理")]
        ['A3区住建局', '洋湖街道办事处']
    """
    text = str(text)
    found = _departments(text) + local_units(text)
    found = [u for u in found if not any(
        o is not u and o.start <= u.start and u.end <= o.end and o.end - o.start > u.end - u.start
        for o in found)]
    found += _generic(text, [(u.start, u.end) for u in found])
    found += [s for s in _selves(text) if not any(u.start <= s.start < u.end for u in found)]
    return sorted(found, key=lambda u: (u.start, -u.end))


def county_of(text: str) -> str:
    """The first district or county code, or district named in words, that a text names."""
    code = re.search(r"[A-Z]\d{1,2} ?[区县市]", text)
    if code:
        return code.group(0).replace(" ", "")
    for m in re.finditer("[区县]", text):
        named = _named_district(text, m.end())
        if named:
            return named
    return ""


def bare_local(text: str, kind: str) -> str:
    """The street, town or township a text names most often (白马渡镇 -> 白马渡镇人民政府)."""
    suffix = {"town": "镇", "township": "乡", "street": "街道"}.get(kind)
    if not suffix:
        return ""
    # 乡村 / 镇街 are words, not a township or town named 安排乡 ...
    names = [_local_name(text, m.start())[1] for m in re.finditer(suffix + "(?![村镇街里亲下])", text)]
    names = [n for n in names if n]
    return max(names, key=names.count) + LOCAL_BODY[kind] if names else ""


def clean_reply(reply: str) -> str:
    """Text without ideographic / no-break spaces and tabs (they split names and signatures)."""
    return re.sub(r"[\u3000\xa0\t]+", "", str(reply)).strip()
