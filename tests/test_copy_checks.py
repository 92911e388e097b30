"""The checks issue 18 adds, on the copy the issue quotes (all of which passed every guardrail
before), and on copy a marketer would send, which must still pass."""

from __future__ import annotations

import csv
from importlib import resources

import pytest

from adpilot.data.records import Product
from adpilot.generation import GuardContext, channel_spec, check_copy, load_brand
from adpilot.generation.audience import product_facts
from adpilot.generation.finalize import close_cut


def sample_product(pid: str) -> Product:
    path = resources.files("adpilot") / "sample" / "products.csv"
    with path.open(encoding="utf-8") as fh:
        row = next(r for r in csv.DictReader(fh) if r["product_id"] == pid)
    return Product(id=pid, title=row["title"], category=row["category"],
                   price=float(row["price"]) if row["price"] else None, currency=row["currency"],
                   description=row["description"], language=row["language"])


def ctx(pid: str, channel: str = "email", lang: str | None = None, **kw) -> GuardContext:
    p = sample_product(pid)
    lang = lang or p.language
    kit = load_brand()
    return GuardContext(channel_spec(channel, lang), kit,
                        facts=product_facts(p, lang) + "\n" + kit.name[lang], **kw)


def fails(fields: dict[str, str], c: GuardContext, name: str) -> bool:
    return any(r.check == name for r in check_copy(fields, c))


def email(body: str, subject: str = "A new favourite") -> dict[str, str]:
    return {"subject": subject, "body": body}


# --- audience descriptors ----------------------------------------------------------------------

@pytest.mark.parametrize(("pid", "fields"), [
    ("P02", {"title": "Perfect Fit for Every Woman",
             "body": "Fine gauge tops made to last. Perfect for women aged 36-52."}),
    ("P05", {"title": "Hair mask",
             "body": "You told us fit & size matters to you. Argan oil for dry hair."}),
    ("P08", {"title": "Hey there", "body": "Hey there, ladies! Got a question about those trousers?"}),
])
def test_audience_descriptors_in_english_copy_fail(pid, fields):
    assert fails(fields, ctx(pid, "push", "en"), "audience")


@pytest.mark.parametrize(("pid", "text"), [
    ("P10", "听说你偏爱穿针织和头发护理？这款开衫很适合你。"),
    ("P11", "你最近穿了这款裙吗？碎花雪纺，收腰设计。"),
    ("P11", "专为30-45岁女性设计的连衣裙。"),
])
def test_audience_descriptors_in_chinese_copy_fail(pid, text):
    assert fails({"text": text}, ctx(pid, "social"), "audience")


def test_segment_traits_given_as_terms_are_never_restated():
    c = ctx("P01", "social", audience=["high spenders", "older"])
    assert fails({"text": "For our high spenders: 100% linen, side pockets. Shop now."}, c, "audience")
    assert not fails({"text": "100% European linen with side pockets. Shop it now."}, c, "audience")


# --- first-person reviewer voice ----------------------------------------------------------------

@pytest.mark.parametrize(("pid", "text"), [
    ("P10", "这本书让我看到了生活的真谛，我很推荐！"),
    ("P15", "我最近也用这个耳机，降噪很好。"),
    ("P09", "我是麓织，有问题也可以随时联系我。"),
])
def test_first_person_reviewer_voice_fails_in_chinese(pid, text):
    assert fails({"text": text}, ctx(pid, "social"), "voice")


def test_first_person_voice_fails_in_english_but_the_brand_we_passes():
    c = ctx("P06", "social")
    assert fails({"text": "I love these headphones, my commute is quiet now. Shop now."}, c, "voice")
    assert not fails({"text": "We made these for quiet commutes: active noise cancelling and up "
                              "to 30 hours of battery. Shop now."}, c, "voice")
    assert not fails({"text": "我们的真丝衬衫，垂感好。快来看看。"}, ctx("P09", "social"), "voice")


# --- claims the record does not have -------------------------------------------------------------

def test_unsupported_material_size_and_use():
    serum = ctx("P04", "email")
    reasons = check_copy(email("Made with true to size full-grain leather. Shop now."), serum)
    unsupported = " ".join(r.reason for r in reasons if r.check == "unsupported")
    assert "leather" in unsupported and "true to size" in unsupported
    trousers = ctx("P08", "email")
    assert fails(email("Wide-leg trousers, perfect for those who care about their hair staying "
                       "silky. Shop now."), trousers, "unsupported")
    silk = ctx("P09", "social")
    assert fails({"text": "真丝衬衫，夏天跑步还是冬天散步都合适。快来看看。"}, silk, "unsupported")


def test_a_fit_claim_needs_a_fit_or_size_fact_in_the_record():
    """"Perfect Fit & Size" on a serum or a lunch bag is a claim no record made; a dress cut in
    a relaxed fit and a case that fits an iPhone may speak of fit."""
    assert fails(email("Hyaluronic acid for your skin routine. Shop now.",
                       "Serum: Perfect Fit & Size"), ctx("P04"), "unsupported")
    assert not fails(email("100% European linen, a relaxed fit you can move in. Shop now.",
                           "The perfect fit for summer"), ctx("P01"), "unsupported")
    assert not fails(email("Clear polycarbonate that fits iPhone 15. Shop now."), ctx("P07"),
                     "unsupported")
    assert fails({"text": "雪纺碎花连衣裙，尺码合身。快来看看。"}, ctx("P11", "social"), "unsupported")
    assert not fails({"text": "50%羊毛混纺，常规版型，穿着合身。快来看看。"}, ctx("P10", "social"),
                     "unsupported")


def test_an_instruction_in_angle_brackets_is_a_placeholder():
    c = ctx("P04")
    text = email("<The most useful fact from the list, lead with it> Shop it today!")
    assert fails(text, c, "placeholder") and fails(text, c, "prompt_echo")
    # the brand's voice line described back to the customer (what make demo wrote on P08)
    assert fails(email("Warm, confident voice speaks to you about organic cotton twill "
                       "trousers. Shop now."), ctx("P08"), "prompt_echo")


def test_unsupported_value_and_colour_claims_in_chinese():
    assert fails({"text": "这款开衫价格实惠，性价比非常高。快来看看。"}, ctx("P10", "social"), "unsupported")
    assert fails({"text": "碎花雪纺连衣裙，红色很显白。快来看看。"}, ctx("P11", "social"), "unsupported")


def test_facts_from_the_record_are_supported():
    assert check_copy(email("100% European linen in a relaxed fit, with a tie waist and side "
                            "pockets. Shop the Linen Wrap Midi Dress today.",
                            "Linen, cut to move in"), ctx("P01")) == []
    zh = ctx("P09", "social")
    assert check_copy({"text": "19姆米重磅桑蚕丝，垂感好，版型略宽松。快来看看这件真丝衬衫。"}, zh) == []


# --- English in Chinese copy, prompt echo -------------------------------------------------------

def test_english_category_name_in_chinese_copy_fails():
    c = ctx("P10", "social")
    assert fails({"text": "偏爱穿 knitwear的你，来看看这件开衫。"}, c, "mixed_language")
    usb = ctx("P16", "social")
    assert not fails({"text": "两个USB-C口加一个USB-A口，单口最高65W。快来看看。"}, usb, "mixed_language")


def test_pasted_voice_words_instructions_and_json_fail():
    c = ctx("P10", "social")
    assert fails({"text": "推荐用舒适、日常、耐穿、好打理等词。快来看看。"}, c, "prompt_echo")
    assert fails({"text": "版型很好看，面料也舒服，舒适日常，耐穿，好打理，推荐你试试！"}, c, "prompt_echo")
    assert fails({"text": "V领单排扣，常规版型，快来看看。}"}, c, "prompt_echo")
    assert not fails({"text": "V领单排扣，常规版型，日常好搭。快来看看。"}, c, "prompt_echo")


# --- call to action ----------------------------------------------------------------------------

def test_every_channel_needs_a_call_to_action_and_the_opt_out_does_not_count():
    sms = ctx("P08", "sms")
    assert fails({"text": "Hey there! Got a question about those comfy trousers? "
                          "Reply STOP to opt out."}, sms, "cta")
    assert not fails({"text": "Organic cotton wide-leg trousers with a high waist. Shop now. "
                              "Reply STOP to opt out."}, sms, "cta")
    assert fails({"text": "真丝衬衫，垂感好。回T退订"}, ctx("P09", "sms"), "cta")
    assert not fails({"text": "真丝衬衫，垂感好，快来看看。回T退订"}, ctx("P09", "sms"), "cta")


# --- repairs -----------------------------------------------------------------------------------

def test_a_chinese_subject_is_never_cut_mid_word():
    cut = "轻盈透气的亚麻衬衫，日常耐穿、好打"
    assert close_cut(cut, len(cut), 5, phrase=True) == "轻盈透气的亚麻衬衫，日常耐穿"
    shampoo = "【氨基酸洗发水】体验油性和混合性"  # no comma to close at: the bracketed name stays
    assert close_cut(shampoo, len(shampoo), 5, phrase=True) == "【氨基酸洗发水】"


# --- grounded in the record; the record's own wording is not a claim ----------------------------

def test_copy_that_states_no_fact_of_the_record_fails():
    """Written by the model for the linen dress (first run of this change): no fact at all."""
    c = ctx("P01")
    vague = email("Experience the comfort and style of our Linen Wrap Midi Dress with our "
                  "exclusive fabric and comfort fit. Shop it today.")
    assert fails(vague, c, "grounded")
    assert not fails(email("Our Linen Wrap Midi Dress has side pockets and a tie waist. Shop it "
                           "today."), c, "grounded")
    assert fails({"text": "亲爱的顾客，我们为你准备了一件精心设计的真丝衬衫。欢迎选购。"},
                 ctx("P09", "social"), "grounded")
    assert not fails({"text": "重磅桑蚕丝真丝衬衫，垂感好。欢迎选购。"}, ctx("P09", "social"), "grounded")


def test_a_spec_the_record_words_with_zui_is_not_an_absolute_claim():
    charger = ctx("P16", "social")
    assert not fails({"text": "65W氮化镓充电器，单口最高65W，可为笔记本充电。快来看看。"}, charger,
                     "banned_claims")
    assert fails({"text": "65W氮化镓充电器，最好用的充电器。快来看看。"}, charger, "banned_claims")


def test_a_subject_loses_its_dangling_tail():
    import json as _json

    from adpilot.generation.channels import channel_spec as spec_of
    from adpilot.generation.finalize import finalize

    spec = spec_of("email", "en")
    model = spec.schema().model_validate_json(_json.dumps({
        "subject": "Argan Repair Hair Mask: A Natural Choice for",
        "body": "Argan oil and shea butter for dry hair. Shop it today."}))
    assert finalize(model, spec, load_brand())["subject"] == "Argan Repair Hair Mask: A Natural Choice"
    email = spec.schema()
    for subject, want in [("Assorted Colours Silk Fan - Perfect for Any", "Assorted Colours Silk Fan"),
                          ("Cups: A Perfect Gift for any", "Cups: A Perfect Gift"),
                          ("Linen: Cut for Summer", "Linen: Cut for Summer")]:  # no tail: as is
        body = "Light silk in assorted colours. Shop it today."
        assert finalize(email(subject=subject, body=body), spec, load_brand())["subject"] == want


def test_second_run_examples_placeholder_loop_and_a_cta_only_in_name():
    """From the second measured run: an unfilled <name!>, a sampling loop, and "add a touch of
    elegance" counted as a call to action."""
    from adpilot.generation.finalize import dedupe_clauses

    serum = ctx("P04", "email")
    assert fails(email("Hey there, <name!>! 2% hyaluronic acid. Shop it today."), serum,
                 "placeholder")
    looped = "这款衬衫版型略宽松，版型舒适，版型宽松，版型宽松，版型宽松。欢迎选购。"
    assert dedupe_clauses(looped) == "这款衬衫版型略宽松，欢迎选购。"
    # the same loop with other endings (the demo's silk shirt): one clause of the run is kept
    assert dedupe_clauses("这款衬衫版型略宽松，版型舒适，版型宽松。售价599元。") \
        == "这款衬衫版型略宽松。售价599元。"
    assert dedupe_clauses("面料柔软，面料透气。版型宽松，颜色百搭。") \
        == "面料柔软，面料透气。版型宽松，颜色百搭。"  # two on one word, or no shared word: kept
    dangling = "版型略宽松，版型宽松，版型宽松，。欢迎选购。"
    assert dedupe_clauses(dangling) == "版型略宽松，版型宽松。欢迎选购。"
    dress = ctx("P01")
    assert fails(email("With a relaxed fit and adjustable tie waist, it's the perfect way to add "
                       "a touch of elegance to your outfit."), dress, "cta")


# --- quick fixes: the e-mail opt-out, filler openers, bracketed names, stray braces -------------

def test_an_email_gets_no_sms_opt_out_and_loses_one_the_model_wrote():
    from adpilot.generation.copy_tidy import tidy

    kit = load_brand()
    assert kit.disclaimer_for("email", "en") == "" and kit.disclaimer_for("email", "zh") == ""
    assert kit.disclaimer_for("sms", "en") == "Reply STOP to opt out."
    c = ctx("P01")
    body = ("100% European linen in a relaxed fit, with a tie waist and side pockets. Shop it "
            "today. Reply STOP to opt out.")
    assert fails(email(body), c, "opt_out")
    fixed = tidy(email(body), c)
    assert fixed["body"] == body.removesuffix(" Reply STOP to opt out.")
    assert check_copy(fixed, c) == []
    zh = ctx("P09", "email")
    assert tidy({"subject": "真丝衬衫", "body": "重磅桑蚕丝，垂感好。欢迎选购。回T退订"}, zh)["body"] \
        == "重磅桑蚕丝，垂感好。欢迎选购。"
    sms_c = ctx("P09", "sms")  # on an SMS it is the brand's disclaimer: kept
    assert tidy({"text": "真丝衬衫，垂感好，快来看看。回T退订"}, sms_c)["text"].endswith("回T退订")


@pytest.mark.parametrize(("before", "after"), [
    ("Just wanted to tell you about our Linen Wrap Midi Dress: 100% European linen. Shop it today.",
     "Meet our Linen Wrap Midi Dress: 100% European linen. Shop it today."),
    ("I'm excited to tell you about the Linen Wrap Midi Dress, in 100% European linen. Shop it "
     "today.", "Meet the Linen Wrap Midi Dress, in 100% European linen. Shop it today."),
    ("We're thrilled to share with you our linen dress with a tie waist. Shop it today.",
     "Meet our linen dress with a tie waist. Shop it today."),
    # a greeting and an introduction in a row: both go (the greeting alone was cut before)
    ("Hey there! I'm excited to tell you about our Linen Wrap Midi Dress, in 100% European "
     "linen. Shop it today.", "Meet our Linen Wrap Midi Dress, in 100% European linen. Shop it today."),
    ("Hey there, ladies! The Linen Wrap Midi Dress has side pockets. Shop it today.",
     "The Linen Wrap Midi Dress has side pockets. Shop it today."),
    ("We're thrilled to share that our linen dress has a tie waist. Shop it today.",
     "Our linen dress has a tie waist. Shop it today."),
])
def test_filler_openers_are_cut(before, after):
    from adpilot.generation.copy_tidy import tidy

    c = ctx("P01")
    assert tidy(email(before), c)["body"] == after
    assert not fails(tidy(email(before), c), c, "opener")


def test_for_those_who_prefer_becomes_what_the_product_is_for():
    from adpilot.generation.copy_tidy import tidy

    c = ctx("P01")
    before = email("A linen dress perfect for those who prefer a relaxed fit. Shop it today.")
    assert fails(before, c, "audience")
    fixed = tidy(before, c)
    assert fixed["body"] == "A linen dress perfect for a relaxed fit. Shop it today."
    assert not fails(fixed, c, "audience")
    # no noun phrase after it: the cut would not be a sentence, so the check still asks
    clause = email("A linen dress for those who love linen. Shop it today.")
    assert tidy(clause, c) == clause and fails(clause, c, "audience")


def test_value_adjectives_the_record_lacks_are_dropped_as_modifiers():
    from adpilot.generation.copy_tidy import tidy

    c = ctx("P01")
    before = {"subject": "Affordable Linen Dress", "body": "An affordable everyday dress in a "
              "light and affordable linen. It is affordable. Shop it today."}
    assert fails(before, c, "unsupported")
    fixed = tidy(before, c)
    assert fixed["subject"] == "Linen Dress"
    # the article agrees with the word that now follows; the predicative use is left
    assert fixed["body"] == "An everyday dress in a light linen. It is affordable. Shop it today."
    assert fails(fixed, c, "unsupported")  # "it is affordable" still asks for an edit
    # said of the product or graded, the word is not a modifier: the sentence stays whole
    for kept in ("Linen, making it affordable for everyone. Shop it today.",
                 "The most affordable linen dress. Shop it today."):
        assert tidy(email(kept), c)["body"] == kept
    sendable = tidy({"subject": "An affordable, light dress", "body": "Linen. Shop it today."}, c)
    assert sendable["subject"] == "A light dress" and not fails(sendable, c, "unsupported")


def test_chinese_greeting_openers_are_cut_and_filler_mid_copy_fails():
    from adpilot.generation.copy_tidy import tidy

    assert fails(email("Hey there! Linen, side pockets. Just wanted to say: shop it today."),
                 ctx("P01"), "opener")

    c = ctx("P09", "social")
    assert tidy({"text": "亲爱的朋友们，你们好！重磅桑蚕丝衬衫，垂感好。快来看看。"}, c)["text"] \
        == "重磅桑蚕丝衬衫，垂感好。快来看看。"
    assert tidy({"text": "你好！我们想告诉你，重磅桑蚕丝衬衫，垂感好。快来看看。"}, c)["text"] \
        == "重磅桑蚕丝衬衫，垂感好。快来看看。"
    assert fails({"text": "重磅桑蚕丝衬衫，垂感好。亲爱的朋友们，快来看看。"}, c, "opener")


def test_a_bracketed_product_name_is_unwrapped_but_an_unknown_slot_still_fails():
    from adpilot.generation.copy_tidy import tidy

    case = ctx("P07")
    body = ("That's what our <MagSafe-Compatible Clear Case> is about: clear polycarbonate with "
            "built-in magnets. Shop it today.")
    fixed = tidy(email(body), case)["body"]
    assert "<" not in fixed and "our MagSafe-Compatible Clear Case is about" in fixed
    assert check_copy(email(fixed), case) == []
    slot = tidy(email("Hi <name!>, 2% hyaluronic acid. Shop it today.", "{first_name}, hello"),
                ctx("P04"))
    assert fails(slot, ctx("P04"), "placeholder") and "{first_name}" in slot["subject"]


def test_stray_braces_are_removed_anywhere():
    from adpilot.generation.copy_tidy import tidy

    c = ctx("P10", "social")
    fixed = tidy({"text": "V领单排扣，}常规版型，快来看看。}"}, c)
    assert fixed["text"] == "V领单排扣，常规版型，快来看看。"
    assert not fails(fixed, c, "prompt_echo")


def test_two_calls_to_action_in_a_row_keep_the_first():
    """From the copy-quality run: 「…快来试试吧！快来看看吧！」 (the model's own and then ours)."""
    from adpilot.generation.copy_tidy import tidy

    c = ctx("P11", "social")
    assert tidy({"text": "碎花雪纺连衣裙，收腰设计。快来试试吧！快来看看吧！"}, c)["text"] \
        == "碎花雪纺连衣裙，收腰设计。快来试试吧！"
    sms = ctx("P11", "sms")
    assert tidy({"text": "碎花雪纺，收腰设计。快来试试！快来看看。回T退订"}, sms)["text"] \
        == "碎花雪纺，收腰设计。快来试试！回T退订"
    one = "碎花雪纺连衣裙，收腰设计。快来看看吧！"
    assert tidy({"text": one}, c)["text"] == one
    en = ctx("P01", "social")
    assert tidy({"text": "100% linen with side pockets. Shop it now. Shop now."}, en)["text"] \
        == "100% linen with side pockets. Shop it now."


def test_a_greeting_with_an_unfilled_name_goes_and_a_dangling_comma_gets_no_stop_after_it():
    """From the copy-step bench: "Hey there, <name!>! 🌟 …" was rejected (a re-ask) where
    cutting the greeting saves the copy; 「版型宽松，」 + our CTA read 「版型宽松，。欢迎选购。」."""
    from adpilot.generation.channels import channel_spec as spec_of
    from adpilot.generation.copy_checks import with_cta
    from adpilot.generation.copy_tidy import tidy

    serum = ctx("P04")
    fixed = tidy(email("Hey there, <name!>! Water-based serum with 2% hyaluronic acid and "
                       "panthenol, fragrance-free. Shop it today."), serum)
    assert fixed["body"].startswith("Water-based serum") and not fails(fixed, serum, "placeholder")
    body = with_cta({"subject": "真丝衬衫", "body": "重磅桑蚕丝，版型略宽松，"}, spec_of("email", "zh"),
                    load_brand())["body"]
    assert body == "重磅桑蚕丝，版型略宽松。欢迎选购。"
