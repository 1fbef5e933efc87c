"""Kinds of unit (教育, 住建, 街道乡镇 ...): the kind a unit name or a reply names, and the duties
of each kind.

Kinds (``unit_category``, ``reply_kind``) follow the official reading of
../shared/docs/unit-types.md exactly, so that what the router learns from replies is what routing is
measured by. ``KIND_BODY`` names the standard place-free unit of each kind, and ``KIND_TOPICS``
lists the duties of each kind in appeal words (``topic_kinds``).
"""

from __future__ import annotations

import re

__all__ = ["KINDS", "KIND_BODY", "KIND_TOPICS", "reply_kind", "topic_kinds", "unit_category"]

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
