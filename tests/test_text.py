"""Tests for triage.text: normalization, PII masking and tokenization."""

from __future__ import annotations

import threading

import pytest

from triage.text import clean, mask_pii, normalize, tokenize, tokenizer_dictionary_path

# --------------------------------------------------------------------------- #
# helpers: build valid numbers from the public formulas (not from triage.text)
# --------------------------------------------------------------------------- #

ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def id_check_char(body17: str) -> str:
    """GB 11643 / ISO 7064 MOD 11-2 check character for a 17-digit body."""
    total = sum(int(d) * w for d, w in zip(body17, ID_WEIGHTS, strict=False))
    return "10X98765432"[total % 11]


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def luhn_complete(prefix: str) -> str:
    """Append the Luhn check digit to ``prefix``."""
    return next(prefix + d for d in "0123456789" if luhn_ok(prefix + d))


def group4(digits: str, sep: str = " ") -> str:
    return sep.join(digits[i : i + 4] for i in range(0, len(digits), 4))


VALID_ID = "44030419900307" + "123"
VALID_ID += id_check_char(VALID_ID)
CARD16 = luhn_complete("622202123456789")  # 6222 0212 3456 789?
CARD19 = luhn_complete("622848001234567890")


def test_helpers_agree_with_known_values() -> None:
    assert id_check_char("11010519491231002") == "X"  # the textbook example
    assert luhn_ok("4111111111111111")
    assert len(CARD16) == 16 and len(CARD19) == 19


# --------------------------------------------------------------------------- #
# normalize
# --------------------------------------------------------------------------- #


def test_normalize_fullwidth_ascii_to_halfwidth() -> None:
    assert normalize("ＡＢＣ１２３") == "ABC123"
    assert normalize("邮箱ｚｈａｎｇ＠ｑｑ．ｃｏｍ　房号３０２＃") == "邮箱zhang@qq.com 房号302#"


def test_normalize_keeps_chinese_punctuation() -> None:
    s = "您好，我想反映：小区（东区）停水了！为什么？已经三天；“急”、《通知》。"
    assert normalize(s) == s


def test_normalize_strips_html_and_decodes_entities() -> None:
    raw = "<p>小区&nbsp;停水</p><br/><div class=\"c\">三天了</div>&amp;无人处理 1&lt;2"
    assert normalize(raw) == "小区 停水 三天了 &无人处理 1<2"
    assert normalize("<script>alert(1)</script>正文<!-- 注释 -->") == "正文"


def test_normalize_removes_invisible_and_collapses_whitespace() -> None:
    raw = "\ufeff  噪音\u200b扰民\x00\x07 \t\n\r  楼上\u3000\u3000装修  "
    assert normalize(raw) == "噪音扰民 楼上 装修"
    assert normalize("") == ""
    assert normalize(" \n\t ") == ""


def test_normalize_is_idempotent() -> None:
    raw = "<b>ＡＢＣ</b>&nbsp;&nbsp;　你好，　世界！"
    once = normalize(raw)
    assert normalize(once) == once


# --------------------------------------------------------------------------- #
# mask_pii
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("id_number", ["11010519491231002X", "11010519491231002x", VALID_ID])
def test_valid_id_number_is_masked(id_number: str) -> None:
    assert mask_pii(f"我的身份证号是{id_number}，请核实") == "我的身份证号是[身份证号]，请核实"


def test_grouped_id_number_is_masked() -> None:
    assert mask_pii("身份证 110105 19491231 002X") == "身份证 [身份证号]"


def test_id_with_bad_checksum_is_not_masked_as_id() -> None:
    good = VALID_ID[-1]
    bad = next(
        VALID_ID[:17] + c for c in "0123456789" if c != good and not luhn_ok(VALID_ID[:17] + c)
    )
    text = f"编号{bad}号"
    assert mask_pii(text) == text
    assert "[身份证号]" not in mask_pii("11010519491231002" + "3")


@pytest.mark.parametrize(
    "card",
    [CARD16, group4(CARD16), group4(CARD16, "-"), CARD19, group4(CARD19)],
)
def test_luhn_valid_bank_card_is_masked(card: str) -> None:
    assert mask_pii(f"退款请打到卡号{card}上") == "退款请打到卡号[银行卡号]上"


def test_luhn_invalid_card_is_left_alone() -> None:
    wrong = CARD16[:-1] + str((int(CARD16[-1]) + 1) % 10)
    assert not luhn_ok(wrong)
    assert mask_pii(f"卡号{group4(wrong)}") == f"卡号{group4(wrong)}"


@pytest.mark.parametrize(
    "phone",
    [
        "13812345678",
        "138-1234-5678",
        "138 1234 5678",
        "+86 138 1234 5678",
        "+8613812345678",
        "86-13912345678",
        "0086 13812345678",
        "19912345678",
    ],
)
def test_mobile_numbers_are_masked(phone: str) -> None:
    assert mask_pii(f"联系电话{phone}，谢谢") == "联系电话[手机号]，谢谢"


@pytest.mark.parametrize(
    "landline",
    ["010-12345678", "0731-88888888", "073188888888", "(0731)88888888", "（0731）88888888", "010-12345678转8001"],
)
def test_landlines_are_masked(landline: str) -> None:
    assert mask_pii(f"座机{landline}无人接听") == "座机[固话]无人接听"


def test_email_is_masked_whole() -> None:
    assert mask_pii("邮箱zhang.san@example.com.cn，备用13812345678@qq.com") == (
        "邮箱[邮箱]，备用[邮箱]"
    )


def test_several_kinds_in_one_text() -> None:
    text = f"张先生，电话138-1234-5678，身份证{VALID_ID}，卡号{group4(CARD16)}，座机0731-88888888"
    assert mask_pii(text) == "张先生，电话[手机号]，身份证[身份证号]，卡号[银行卡号]，座机[固话]"


@pytest.mark.parametrize(
    "text",
    [
        "2026年3月15日下午，3栋2单元502室楼上装修",
        "拨打12345热线反映，被拖欠工资5000元，共计12000.50元",
        "2026-03-15 08:30 来电，工单号20260315000123",
        "编号1381234567890123",  # phone-like digits inside a longer (Luhn-invalid) run
        "1234 5678 9012 3456 7890",  # 20 grouped digits: not a card, not partially masked
    ],
)
def test_ordinary_numbers_are_untouched(text: str) -> None:
    assert mask_pii(text) == text


def test_embedded_digits_are_not_partially_masked() -> None:
    run = "9" + "13812345678" + "9"
    assert mask_pii(f"单号{run}") == f"单号{run}"


def test_clean_is_normalize_then_mask() -> None:
    raw = "<p>电话：１３８１２３４５６７８</p>&nbsp;身份证：１１０１０５１９４９１２３１００２Ｘ"
    assert clean(raw) == "电话：[手机号] 身份证：[身份证号]"
    assert clean("") == ""


# --------------------------------------------------------------------------- #
# tokenize
# --------------------------------------------------------------------------- #


def test_tokenize_keeps_domain_words_whole_and_drops_punctuation() -> None:
    tokens = tokenize("工地拖欠农民工工资，晚上还噪音扰民！住建局、街道办都不管。")
    assert "农民工工资" in tokens
    assert "噪音扰民" in tokens
    assert "住建局" in tokens and "街道办" in tokens
    assert not {"，", "！", "、", "。"} & set(tokens)


@pytest.mark.parametrize(
    "word", ["12345热线", "接诉即办", "违章建筑", "占道经营", "油烟扰民", "学区房", "物业费"]
)
def test_tokenize_user_dictionary_words(word: str) -> None:
    assert word in tokenize(f"关于{word}的问题。")


def test_tokenize_placeholders_become_single_words() -> None:
    tokens = tokenize(clean("我的电话13812345678，邮箱a@b.cn"))
    assert "手机号" in tokens and "邮箱" in tokens
    assert "[" not in tokens and "]" not in tokens


def test_tokenize_empty_and_blank() -> None:
    assert tokenize("") == []
    assert tokenize("   \n") == []
    assert tokenize("，。！？ ...") == []


def test_tokenize_is_thread_safe_and_deterministic() -> None:
    text = "小区电梯故障，物业公司不修，业主委员会也不管，存在安全隐患。"
    expected = tokenize(text)
    results: list[list[str]] = []

    def work() -> None:
        results.append(tokenize(text))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 8
    assert "电梯故障" in expected and "物业公司" in expected


def test_user_dictionary_file() -> None:
    path = tokenizer_dictionary_path()
    assert path.is_file() and path.parent.name == "data"
    lines = path.read_text(encoding="utf-8").splitlines()
    words = []
    for line in lines:
        word, freq, pos = line.split(" ")
        assert freq.isdigit() and pos.isalpha()
        words.append(word)
    assert len(words) >= 180
    assert len(words) == len(set(words))
    assert {"农民工工资", "噪音扰民", "12345热线", "接诉即办"} <= set(words)
