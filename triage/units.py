"""Unit names: the standard name of a handling unit, read from a reply or a department cell.

A government reply usually names the unit that handled the appeal (``A3区住建局``, ``市教育局``,
``洋湖街道``) or speaks as it (``我局 ... A3区住房和城乡建设局 2019年5月``). ``handling_unit``
finds the unit names in a reply, picks the one a dispatcher would have routed the appeal to and
returns its standard short name with its place (``A3区住建局``, ``洋湖街道办事处``).

Which unit is the handler (read off about 60 replies of the shared Teddy data):

1. The unit the hotline forwarded the appeal to (``已转交县住建局核实、办复``): that *is* the
   dispatch.
2. The unit that says it handled it: the subject of 高度重视 / 核实 / 调查 / 回复 (``A3区洋湖街道
   高度重视``, ``经区住建局调查核实``), or the unit that signs the reply at its end.
3. ``我局`` / ``我街道`` / ``我镇``: the unit named elsewhere in the reply with the same kind of
   suffix (often the signature).
4. Otherwise the first unit named.

``我镇`` in a reply that never names its town gives a town government of no name
(``L6县镇人民政府``): the kind of unit is still known, and routing is measured by kind.

Kinds of unit (教育, 住建, 街道乡镇 ...: ``unit_category``, ``reply_kind``) follow the official
reading of ../shared/docs/unit-types.md exactly, so that what the router learns from replies is what
routing is measured by; ``kind_unit`` names the standard, placed unit of a kind (民政 for an appeal
from A3区 -> ``A3区民政局``) and ``KIND_TOPICS`` lists the duties of each kind in appeal words.

When the handler hands the case on to a body of its own (``市住建局及时将您反映的问题交由市房屋
交易管理中心办理``), the dispatcher routed it to the handler that speaks (``市住建局``), so a
hand-over inside a sentence whose subject is a unit keeps the subject.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "KINDS", "KIND_BODY", "KIND_TOPICS", "UnitMention", "find_units", "handling_unit", "keep_kind",
    "kind_unit", "local_body", "place_of", "place_unit", "relocate", "reply_kind", "standard_unit",
    "topic_kinds", "unit_category",
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

# Unit kinds by keywords inside a name, tried in this order: the official reading
# (../shared/docs/unit-types.md), so that the kinds the router learns and predicts are the ones
# routing is measured by.
_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("公积金", ("公积金",)), ("医保", ("医保", "医疗保障")), ("教育", ("教育", "教体", "学校")),
    ("公安", ("公安", "派出所", "交警", "治安", "警")),
    ("住建", ("住建", "住房和城乡建设", "城乡建设", "房产", "住房保障", "房管", "建设局")),
    ("人社", ("人社", "人力资源", "社保", "社会保险", "劳动", "就业")),
    ("卫健", ("卫健", "卫生健康", "卫计", "卫生", "疾控", "医院")),
    ("交通", ("交通运输", "交通", "运管", "公交", "地铁", "轨道", "公路")),
    ("生态环境", ("生态环境", "环保", "环境保护")),
    ("市场监管", ("市场监督", "市场监管", "工商", "食药", "质监", "物价")),
    ("自然资源规划", ("自然资源", "规划", "国土", "不动产")),
    ("城管", ("城管", "城市管理", "市政", "执法", "环卫")), ("水务", ("水务", "水利")),
    ("商务", ("商务",)), ("文旅", ("文旅", "文体", "文化", "旅游", "广电")), ("民政", ("民政",)),
    ("税务", ("税务",)), ("发改", ("发改", "发展和改革")),
    ("农业农村", ("农业", "农村", "林业", "畜牧", "渔政")),
    ("街道乡镇", ("街道", "镇政府", "乡政府", "镇人民政府", "乡人民政府", "社区", "居委会", "村委",
              "我镇", "我乡", "我街道")),
)
KINDS: tuple[str, ...] = tuple(kind for kind, _ in _CATEGORIES)
# Read before typing: a town's government is 镇政府; 人民政府 alone is no kind (not 民政), nor 市政府.
_GOVERNMENT = (("镇人民政府", "镇政府"), ("乡人民政府", "乡政府"), ("人民政府", ""), ("市政府", ""),
               ("区政府", ""), ("县政府", ""))
# A unit name in a reply, as the official reading finds them (1 to 12 characters and a suffix).
_TYPED_NAME = re.compile(
    r"(?:我镇|我乡|我街道|[\u4e00-\u9fa5A-Z0-9]{1,12}?(?:局|委员会|中心|大队|支队|派出所|街道办事处|街道|"
    r"镇人民政府|乡人民政府|镇政府|乡政府|社区|居委会|村委会|站|所))")
# The standard place-free unit of each kind: the lead when the router knows the kind but no unit.
KIND_BODY: dict[str, str] = {
    "公积金": "公积金中心", "医保": "医保局", "教育": "教育局", "公安": "公安局", "住建": "住建局",
    "人社": "人社局", "卫健": "卫健委", "交通": "交通运输局", "生态环境": "生态环境局",
    "市场监管": "市场监管局", "自然资源规划": "自然资源和规划局", "城管": "城管局", "水务": "水务局",
    "商务": "商务局", "文旅": "文旅局", "民政": "民政局", "税务": "税务局", "发改": "发改委",
    "农业农村": "农业农村局", "街道乡镇": "街道办事处",
}
# What each kind of unit answers for (its duties, in the words appeals use), written by hand from
# the departments' usual remits, not fitted to any data (some 25 misrouted shared appeals were read
# while writing it). Rare kinds have few past tickets; these words let an appeal about 宅基地 or 低保
# reach 自然资源规划 or 民政 all the same (HistoryRouter topic_weight).
KIND_TOPICS: dict[str, str] = {
    "公积金": "公积金",
    "医保": "医保|医疗保险|医疗保障|新农合|异地就医|报销|参保|门诊特殊|大病保险",
    "教育": "学校|小学|中学|初中|高中|幼儿园|学生|老师|教师|补课|招生|入学|学位|学区|校长|培训机构|"
          "校车|家长|学费|教育|班主任|考试|中考|高考|毕业|学籍",
    "公安": "户口|户籍|落户|身份证|派出所|报警|警察|民警|交警|违章|驾照|驾驶证|车牌|上牌|盗窃|被盗|诈骗|"
          "赌博|打架|治安|违停|酒驾|罚单|电子眼|黑社会|吸毒|公安|非法集资|飙车",
    "住建": "物业|开发商|商品房|交房|维修基金|维修资金|业委会|电梯|公租房|廉租房|保障房|棚改|棚户区|"
          "房屋质量|开裂|渗水|漏水|建筑工地|住房|房地产|楼盘|购房|售楼|燃气|天然气|管道|老旧小区|提质改造",
    "人社": "社保|养老保险|养老金|退休|工资|欠薪|拖欠|农民工|劳动合同|劳动仲裁|失业|就业|招聘|公务员|"
          "事业单位|职称|人事|档案|工伤|社会保险|编制|辞退|加班|五险",
    "卫健": "医院|医生|护士|医疗|看病|卫生院|诊所|疫苗|计生|生育|二胎|独生子女|出生证|疾控|手术|患者|病人|"
          "卫生|计划生育|村医",
    "交通": "公交|地铁|出租车|的士|网约车|公路|高速|修路|客运|班车|车站|线路|站台|货车|运输|道路|马路|路面|"
            "红绿灯|桥|隧道|驾校|停车场|收费站",
    "生态环境": "污染|排污|废水|废气|异味|臭味|粉尘|环评|化工|辐射|基站|焚烧|排放|环保|空气|水质|黑臭|噪声",
    "市场监管": "食品|餐馆|饭店|商家|消费者|退款|假货|价格|计量|商标|营业执照|无证|药品|药店|保健品|超市|"
             "虚假宣传|过期|质量问题|乱收费|收费标准|健身|会员卡|预付卡|电信|宽带",
    "自然资源规划": "土地|宅基地|征地|规划|不动产|房产证|产权证|国土|用地|挖沙|采砂|建房|确权|地块|红线|"
               "容积率|违法用地",
    "城管": "违建|违章建筑|违法建设|占道|摊贩|渣土|广告牌|城管|路灯|井盖|垃圾|环卫|绿化|夜间施工|施工噪音|"
          "油烟|烧烤|乱搭|搭建|拆违|市容|噪音",
    "水务": "自来水|停水|水压|供水|排水|下水道|污水|水库|河道|防汛|水利|水费|积水|内涝|水管",
    "商务": "商务|外贸|粮食|报废汽车|加油站|商场|步行街|菜市场",
    "文旅": "旅游|景区|导游|文化|广电|电视|网吧|体育|图书馆|文物|演出|有线|广场舞|KTV|旅行社",
    "民政": "低保|养老院|敬老院|救助|残疾|殡葬|墓地|公墓|婚姻登记|社会组织|高龄|五保|孤儿|特困|优抚|退役|老年",
    "税务": "税|发票|纳税",
    "发改": "电价|立项|油价|物价|电费|发改|项目审批|价格调整",
    "农业农村": "农业|种植|养殖|化肥|农药|种子|畜牧|生猪|渔|林业|林地|土地流转|合作社|农机|耕地|农田|扶贫|"
            "农村|村民|秸秆",
    "街道乡镇": "社区|居委会|村委|邻里|网格|小区|村民小组|组长|村干部|村支书",
}
_TOPICS = {kind: re.compile(words) for kind, words in KIND_TOPICS.items()}

_CJK = "\u4e00-\u9fff\u3400-\u4dbf"
_CODE = r"[A-Z]\d{0,2} ?[省市区县州]"
_DEPT = re.compile(
    rf"(?P<place>(?:{_CODE})+|[省市区县])?"
    rf"(?P<body>{'|'.join(sorted(_BODY_OF, key=len, reverse=True))})"
)
# Local units named by a place word: streets, towns, townships, communities, villages, stations.
_LOCAL = re.compile(
    r"街道办事处|街道办|街道|镇人民政府|镇党委政府|镇党委|镇政府|乡人民政府|乡党委政府|乡党委|乡政府|"
    r"社区居委会|社区居民委员会|社区|村村委会|村民委员会|村委会|派出所"
)
_LOCAL_KIND = {"街": "street", "镇": "town", "乡": "township", "社": "community", "村": "village",
               "派": "police"}
_LOCAL_BODY = {"street": "街道办事处", "town": "镇人民政府", "township": "乡人民政府",
               "community": "社区", "village": "村委会", "police": "派出所"}
_BODY_KIND = {body: kind for kind, body in _LOCAL_BODY.items()}
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
# What follows a unit that says it handled the case (A3区洋湖街道高度重视, 经区住建局核实 ...).
_ACTS = re.compile(r"^(?:[、和及与][^，。！？；]{2,14}?)?(?:党委政府|党委|、?政府|领导|主要负责人|相关负责人|"
                   r"工作人员)?(?:知悉|收悉|获悉|高度重视|非常重视|十分重视|收到|接到|已|立即|及时|迅速|"
                   r"第一时间|对此|经调查|经查|经核实|调查|核实|核查|回复|答复|进行|派|组织|会同|联合|责成|"
                   r"督促|牵头|于\d)")
_FORWARD = re.compile(r"(?:转交|转至|转到|已转|已交|交由|交办|转办|转送|移交|交给|责成)\s*$")
_SIGN_TAIL = re.compile(r"^[\s。！!]*(?:\d{4}\s*[年\-/.]\s*\d{1,2}.{0,8})?[\s。]*$")


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
    return re.search(f"(?:{_CODE})+$", text[:start])


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


def _locals(text: str) -> list[UnitMention]:
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
        body = name.removesuffix("村") + "村村委会" if kind == "village" else name + _LOCAL_BODY[kind]
        out.append(UnitMention(code.start() if code else start, m.end(), place + body, kind, place,
                               _LOCAL_BODY[kind]))
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
    found = _departments(text) + _locals(text)
    found = [u for u in found if not any(
        o is not u and o.start <= u.start and u.end <= o.end and o.end - o.start > u.end - u.start
        for o in found)]
    found += _generic(text, [(u.start, u.end) for u in found])
    found += [s for s in _selves(text) if not any(u.start <= s.start < u.end for u in found)]
    return sorted(found, key=lambda u: (u.start, -u.end))


def place_of(text: str) -> str:
    """The first district or county a text names (``A3区``, ``K11县``, ``东城区``), else its city
    (``A市``), else ``""``."""
    text = str(text)
    county = _county(text)
    if county:
        return county
    city = re.search(r"[A-Z] ?市", text)
    return city.group(0).replace(" ", "") if city else ""


def _county(text: str) -> str:
    """The first district or county code, or district named in words, that a text names."""
    code = re.search(r"[A-Z]\d{1,2} ?[区县市]", text)
    if code:
        return code.group(0).replace(" ", "")
    for m in re.finditer("[区县]", text):
        named = _named_district(text, m.end())
        if named:
            return named
    return ""


def _fill_place(unit: UnitMention, text: str) -> str:
    """``区住建局`` -> ``A5区住建局`` when the reply names exactly one district (likewise 县)."""
    if unit.place not in {"区", "县"}:
        return unit.name
    codes = set(re.findall(rf"[A-Z]\d{{1,2}}{unit.place}", text))
    return (codes.pop() + unit.name[1:]) if len(codes) == 1 else unit.name


def _is_signature(unit: UnitMention, text: str) -> bool:
    return unit.start >= len(text) - 60 and bool(_SIGN_TAIL.match(text[unit.end :]))


def _forwarded(unit: UnitMention, text: str, units: list[UnitMention]) -> bool:
    """The hotline, not a unit speaking in the same clause, handed the case to ``unit``."""
    if unit.kind == "self" or not _FORWARD.search(text[max(0, unit.start - 6) : unit.start]):
        return False
    clause = max(text.rfind(c, 0, unit.start) for c in "。！？；") + 1
    return not any(clause <= u.start < unit.start for u in units)


def _acts(unit: UnitMention, text: str) -> bool:
    return text[max(0, unit.start - 1) : unit.start] == "经" or bool(_ACTS.match(text[unit.end :]))


def _bare_local(text: str, kind: str) -> str:
    """The street, town or township a text names most often (白马渡镇 -> 白马渡镇人民政府)."""
    suffix = {"town": "镇", "township": "乡", "street": "街道"}.get(kind)
    if not suffix:
        return ""
    # 乡村 / 镇街 are words, not a township or town named 安排乡 ...
    names = [_local_name(text, m.start())[1] for m in re.finditer(suffix + "(?![村镇街里亲下])", text)]
    names = [n for n in names if n]
    return max(names, key=names.count) + _LOCAL_BODY[kind] if names else ""


def _resolve_self(me: UnitMention, text: str, units: list[UnitMention]) -> str | None:
    """The unit ``我局`` / ``我镇`` stands for: a signature, else a unit named with that suffix."""
    same = [u for u in units if u.kind == me.name]
    signed = [u for u in same if _is_signature(u, text)]
    if signed or same:
        return _fill_place((signed or same)[0], text)
    if me.name in {"town", "township"}:  # 我镇 of a reply that never names its town
        return _bare_local(text, me.name) or _county(text) + _LOCAL_BODY[me.name]
    return _bare_local(text, me.name) or None


def _choose(text: str, units: list[UnitMention]) -> str | None:
    pool = [u for u in units if not u.generic] or units
    named = [u for u in pool if u.kind != "self"]
    for unit in [u for u in named if _forwarded(u, text, units)][:1]:
        return _fill_place(unit, text)
    for unit in (u for u in pool if _acts(u, text)):
        name = _resolve_self(unit, text, units) if unit.kind == "self" else _fill_place(unit, text)
        if name:
            return name
    signed = [u for u in named if _is_signature(u, text)]
    if signed:
        return _fill_place(signed[-1], text)
    for unit in (u for u in pool if u.kind == "self"):
        name = _resolve_self(unit, text, units)
        if name:
            return name
    return _fill_place(named[0], text) if named else None


def clean_reply(reply: str) -> str:
    """Text without ideographic / no-break spaces and tabs (they split names and signatures)."""
    return re.sub(r"[\u3000\xa0\t]+", "", str(reply)).strip()


def handling_unit(reply: str) -> str | None:
    """The standard name of the unit that handled an appeal, read from the government's reply.

    Args:
        reply: the reply text (答复意见).

    Returns:
        A standard unit name with its place when the reply gives one (``A3区住建局``,
        ``洋湖街道办事处``), or ``None`` when the reply names no unit.

    Example:
        >>> handling_unit("A3区洋湖街道高度重视，现回复如下：……")
        'A3区洋湖街道办事处'
    """
    text = clean_reply(reply)
    return _choose(text, find_units(text))


def _whole(name: str) -> UnitMention | None:
    """The unit a whole name (a department cell, a predicted unit) reads as, if any."""
    text = clean_reply(name).replace(" ", "")
    whole = [u for u in find_units(text) if u.end == len(text) and u.kind != "self"]
    return whole[-1] if whole else None


def standard_unit(name: str) -> str:
    """The standard short name of a department cell (``A3区住房和城乡建设局`` -> ``A3区住建局``).

    Example:
        >>> standard_unit("洋湖街道")
        '洋湖街道办事处'
    """
    unit = _whole(name)
    return unit.name if unit else clean_reply(name).replace(" ", "")


def local_body(name: str) -> str:
    """The unit a name stands for anywhere, without its place (``A3区住建局`` -> ``住建局``,
    ``洋湖街道办事处`` -> ``街道办事处``)."""
    name = str(name).removeprefix("属地")  # 属地街道办事处: the street office of the place
    unit = _whole(name)
    return unit.body if unit else re.sub(f"^(?:{_CODE})+|^[省市区县]", "", standard_unit(name))


def unit_category(name: str) -> str:
    """The kind of unit a name is (教育, 住建, 街道乡镇 ...) by keywords inside it, or ``""``.

    Example:
        >>> unit_category("A3区住建局"), unit_category("跳马镇人民政府"), unit_category("市财政局")
        ('住建', '街道乡镇', '')
    """
    name = str(name)
    for government, short in _GOVERNMENT:
        name = name.replace(government, short)
    for category, keywords in _CATEGORIES:
        if any(k in name for k in keywords):
            return category
    return ""


def reply_kind(reply: str, head: int = 300) -> str:
    """The kind of the first unit a reply names that has a kind (the official reading), or ``""``.

    Only the reply's first ``head`` characters are read; a name is the 1 to 12 characters before
    a unit suffix, typed by the keywords inside it. A short text (a department cell, at most 30
    characters) that names no unit this way is typed as a whole. This is the label routing is
    measured by, and what the router learns the kind of unit from when it has replies.

    Example:
        >>> reply_kind("网友您好！经A3区住房和城乡建设局核实，洋湖街道已处理。")
        '住建'
        >>> reply_kind("您好，我镇已收悉，正在处理。")
        '街道乡镇'
    """
    text = str(reply)[:head]
    for m in _TYPED_NAME.finditer(text):
        kind = unit_category(m.group(0))
        if kind:
            return kind
    return unit_category(text) if len(text) <= 30 else ""


def topic_kinds(text: str) -> dict[str, int]:
    """The kinds of unit whose duties an appeal speaks of: kind -> number of distinct duty words.

    Example:
        >>> topic_kinds("小区物业乱收费，电梯坏了半年没人修")
        {'住建': 2, '市场监管': 1, '街道乡镇': 1}
    """
    text = str(text)
    found = {kind: len(set(pattern.findall(text))) for kind, pattern in _TOPICS.items()}
    return {kind: count for kind, count in found.items() if count}


def kind_unit(kind: str, text: str) -> str:
    """The standard unit of ``kind`` for an appeal, placed by its address.

    A 街道乡镇 appeal goes to the street, town or township it names (a town's government when it
    names a town but no street), other kinds to their standard body in the appeal's district.

    Example:
        >>> kind_unit("教育", "A3区某小学乱收费")
        'A3区教育局'
        >>> kind_unit("街道乡镇", "A7县黄星镇蓝田新村道路破损")
        'A7县黄星镇人民政府'
    """
    body = KIND_BODY.get(kind)
    if body is None:
        return place_unit(kind, text)
    if kind == "街道乡镇":
        named = [u.kind for u in _locals(str(text)) if u.kind in {"street", "town", "township"}]
        if named:
            body = _LOCAL_BODY[named[0]]
        elif re.search("镇(?![村街里亲下])", str(text)) and "街道" not in str(text):
            body = _LOCAL_BODY["town"]
    return keep_kind(place_unit(body, text), body, kind, text)


def keep_kind(name: str, body: str, kind: str, text: str) -> str:
    """``name`` (``body`` placed by an appeal) when it still reads as ``kind``; else ``body`` under
    the appeal's place code only (a place read in words can carry a kind: 旅游区民政局 reads as 文旅).

    A name is read as routing is measured (``reply_kind``: the first unit in it that has a kind),
    so a police station named after its street (``裕南街街道派出所``, read as the street) gives
    way to ``A2区派出所``.
    """
    if not kind or reply_kind(name) == kind:
        return name
    code = re.search(r"[A-Z]\d{1,2} ?[区县市]|[A-Z] ?市", str(text))
    return (code.group(0).replace(" ", "") if code else "市") + body


def place_unit(body: str, text: str) -> str:
    """The unit ``body`` (a place-free name) of the place an appeal names.

    A street, town, township, community, village or police station named in the text is used for
    those bodies (a community or village of no name falls back to its street or town, a police
    station to the 公安局); a district or county (else the city's code, else 市) stands before it.

    Example:
        >>> place_unit("住建局", "A3区洋湖街道某小区漏水")
        'A3区住建局'
        >>> place_unit("街道办事处", "A3区洋湖街道某小区漏水")
        'A3区洋湖街道办事处'
    """
    text = str(text)
    kind = _BODY_KIND.get(body)
    if kind is None:
        return (place_of(text) or "市") + body
    county = _county(text)
    named = [u for u in find_units(text) if u.kind == kind and u.name != u.body]
    if named:
        return county + named[0].name.removeprefix(named[0].place)
    if kind in {"street", "town", "township"}:
        return county + (_bare_local(text, kind) or body)
    if kind == "police":
        return (county or place_of(text) or "市") + "公安局"
    up = "town" if kind == "village" and "镇" in text else "street"
    return county + (_bare_local(text, up) or _LOCAL_BODY[up])


_NAME_PLACE = re.compile(r"(?:([A-Z])(?:\d{1,2}[区县]|市)|市)(?![\u4e00-\u9fff]{0,3}[区县])")


def relocate(name: str, text: str) -> str:
    """A placed unit name moved to the place an appeal names, when that place differs.

    ``A7县教育局`` for an appeal from ``A5区`` is ``A5区教育局``; for one from ``C市`` it is
    ``C市教育局``; ``市教育局`` for an appeal from ``C市`` is ``C市教育局``. Names of a street,
    town or named district, and appeals that name no place code, are left as they are.
    """
    m = _NAME_PLACE.match(name)
    if not m or _BODY_KIND.get(local_body(name)):
        return name
    district = re.search(r"[A-Z]\d{1,2}[区县]", text)
    letter = re.search(r"([A-Z])\d{0,2} ?[市区县]", text)
    if district and re.match(r"[A-Z]\d", name) and district.group(0) != m.group(0):
        return district.group(0) + name[m.end() :]
    if letter and letter.group(1) != m.group(1):
        return letter.group(1) + "市" + name[m.end() :]
    return name
