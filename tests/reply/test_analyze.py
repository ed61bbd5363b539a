"""Inquiry analysis on the shipped KB: types, audience, urgency, sentiment and risk flags."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from suggester.knowledge.articles import ESCALATION, TAXONOMY, read_article
from suggester.reply.analyze import Analysis, Analyzer, find_risks, infer_audience
from suggester.search.index import Indexer, load_chunks

from conftest import SHIPPED_KB


@pytest.fixture(scope="module")
def new_analyzer(shipped_settings, shipped_retriever):
    """Build analysers over the shipped index; Kiwi tokens come from the indexer's cache."""
    chunks = load_chunks(shipped_settings)
    tokens = Indexer(shipped_settings).tokens_for(chunks)

    def build(corrections=()) -> Analyzer:
        return Analyzer(tokenizer=shipped_retriever.tokenizer,
                        embedder=shipped_retriever.embedder, chunks=chunks,
                        corrections=corrections, chunk_tokens=tokens)

    return build


@pytest.fixture(scope="module")
def analyzer(new_analyzer) -> Analyzer:
    return new_analyzer()


@pytest.fixture(scope="module")
def analyze(analyzer, shipped_retriever):
    """Analyse as the service does: infer the audience, retrieve once, pass vector and result."""

    def run(text: str, *, audience: str | None = None, using: Analyzer | None = None) -> Analysis:
        who = audience or infer_audience(text)
        vector = shipped_retriever.embedder.query_vector(text)
        retrieval = shipped_retriever.search(
            text, k=5, audience=who if who in ("buyer", "seller") else None,
            query_vector=vector)
        return (using or analyzer).analyze(text, audience=audience, query_vector=vector,
                                           retrieval=retrieval)

    return run


def escalation_text(article_id: str) -> str:
    path = next(SHIPPED_KB.glob(f"*/{article_id}.md"))
    section = read_article(path).section(ESCALATION)
    assert section is not None
    return section.text


def test_a_message_asking_two_things_gets_both_types(analyze):
    result = analyze("반품 신청은 어디서 하나요? 그리고 쓴 쿠폰은 다시 돌려받을 수 있어요?")
    assert set(result.types) == {"반품·환불", "쿠폰·포인트"}
    confidences = [t.confidence for t in result.inquiry_types]
    assert confidences == sorted(confidences, reverse=True)
    assert all(0 < c <= 1 for c in confidences)


def test_a_one_sentence_question_gets_one_type(analyze):
    result = analyze("카드로 결제했는데 환불은 며칠 걸려요?")
    assert result.types == ["반품·환불"]


def test_seller_asking_about_settlement(analyze):
    result = analyze("구매확정 된 지 이틀 지났는데 정산금이 아직 안 들어왔어요")
    assert (result.audience, result.audience_source) == ("seller", "inferred")
    assert result.primary_type == "정산·수수료"
    assert result.urgency == "normal"


def test_off_platform_offer_is_flagged_with_evidence_and_kb_escalation(analyze):
    text = "카톡으로 연락주시면 계좌로 보내드릴게요"
    result = analyze(text)
    flag = result.flag("off_platform")
    assert flag is not None
    for span in flag.evidence:
        assert text[span.start:span.end] == span.text
    assert flag.span.text == "카톡으로 연락"
    assert "계좌로 보내" in [span.text for span in flag.evidence]
    assert flag.escalation is not None
    assert flag.escalation.article_id == "off-platform-payment"
    assert flag.escalation.text == escalation_text("off-platform-payment")
    assert "안전거래팀" in flag.escalation.text
    assert result.primary_type == "사기·안전"
    assert result.urgency == "high"


def test_outage_is_critical(analyze):
    result = analyze("지금 앱이 아예 안 열려요 결제도 계속 오류나요")
    assert "outage" in result.flags
    assert result.urgency == "critical"
    assert "장애·긴급" in result.types
    escalation = result.flag("outage").escalation
    assert escalation.article_id in ("outage-response", "site-down-cannot-pay")
    assert "#incident" in escalation.text


def test_the_kb_raises_a_flag_the_cue_words_miss(analyze):
    text = "수수료 안 내게 그냥 송금으로 거래하자는데 괜찮나요"
    assert "off_platform" not in find_risks(text)  # no cue word says it...
    analysis = analyze(text)
    assert "off_platform" in analysis.flags  # ...the KB's off-platform article does
    flag = analysis.flag("off_platform")
    assert flag.evidence and all(text[s.start:s.end] == s.text for s in flag.evidence)
    assert flag.escalation is not None


def test_a_past_outage_is_not_raised_by_the_kb_either(analyze):
    analysis = analyze("어제 앱 오류 때문에 반품신청을 못했는데 그새 기간이 지나버렸어요")
    assert "outage" not in analysis.flags


def test_angry_customer_threatening_legal_action(analyze):
    result = analyze("몇 번을 말해야 돼요? 환불 안 해주면 소비자원에 신고하고 소송할 거예요")
    assert result.sentiment == "angry"
    assert {"legal_threat", "repeated_contact"} <= set(result.flags)
    legal = result.flag("legal_threat")
    assert legal.span.text == "소비자원"
    assert legal.escalation.article_id == "legal-threat-complaint"
    assert "법무팀" in legal.escalation.text
    assert result.urgency == "high"


def test_personal_data_in_the_message_is_flagged(analyze):
    text = "배송지 바꿔주세요 연락처는 010-9876-5432예요"
    result = analyze(text)
    flag = result.flag("personal_data")
    assert flag is not None
    assert [s.text for s in flag.evidence] == ["010-9876-5432"]
    assert flag.escalation.article_id == "personal-data"
    assert result.primary_type == "배송"


def test_a_correction_changes_the_type_of_the_next_similar_message(analyze, new_analyzer):
    fresh = new_analyzer()
    asked, later = "안 입는 옷 기부도 받아주나요?", "안입는 옷도 기부 받아주시나요??"
    before = analyze(later, using=fresh)
    assert before.primary_type != "기능제안"
    fresh.learn(asked, ["기능제안"])
    assert analyze(asked, using=fresh).primary_type == "기능제안"
    assert analyze(later, using=fresh).primary_type == "기능제안"
    # An unrelated inquiry keeps its own type.
    assert analyze("정산 언제 돼요?", using=fresh).primary_type == "정산·수수료"


def test_corrections_from_the_store_are_learned_at_start_up(analyze, new_analyzer):
    loaded = new_analyzer(corrections=[("명품 가방 보관 서비스도 해주나요?", ["이용방법"])])
    assert loaded.learned == 1
    assert analyze("명품가방 보관해주는 서비스 있어요?", using=loaded).primary_type == "이용방법"


def test_the_latest_correction_of_an_inquiry_wins(new_analyzer):
    analyzer = new_analyzer()
    analyzer.learn("세탁 서비스 같은 거 있나요?", ["이용방법"])
    analyzer.learn("세탁 서비스  같은 거 있나요?", ["기능제안"])
    assert analyzer.learned == 1
    assert analyzer.analyze("세탁 서비스 같은 거 있나요?").primary_type == "기능제안"


def test_a_forgotten_correction_decides_nothing(analyze, new_analyzer):
    analyzer = new_analyzer()
    asked = "안 입는 옷 기부도 받아주나요?"
    before = analyze(asked, using=analyzer).primary_type
    analyzer.learn(asked, ["기능제안"])
    analyzer.learn("세탁 서비스 같은 거 있나요?", ["이용방법"])
    analyzer.forget("안 입는  옷 기부도 받아주나요?")  # spacing does not matter, as in learn
    assert analyzer.learned == 1
    assert analyze(asked, using=analyzer).primary_type == before != "기능제안"
    analyzer.forget("never learned")  # nothing to forget: no error
    assert analyzer.learned == 1


def test_agent_given_audience_wins_over_inference(analyze):
    text = "구매자가 반품한 옷이 도착했는데 언제까지 검수해야 돼요?"
    assert analyze(text).audience == "seller"
    result = analyze(text, audience="buyer")
    assert (result.audience, result.audience_source) == ("buyer", "agent")


def test_calm_question_is_calm_and_normal(analyze):
    result = analyze("안심반품 서비스가 어떤 건지 궁금해요.")
    assert (result.sentiment, result.urgency, result.flags) == ("calm", "normal", [])
    assert result.primary_type == "반품·환불"


def test_analysis_is_json_ready(analyze):
    result = analyze("판매자가 잠수탔어요 ㅠㅠ 돈 돌려받을 수 있나요?")
    data = json.loads(json.dumps(result.to_dict(), ensure_ascii=False))
    assert set(data) == {"inquiry_types", "audience", "audience_source", "urgency",
                         "sentiment", "risk_flags", "timings_ms"}
    assert data["inquiry_types"][0]["category"] in TAXONOMY
    fraud = next(f for f in data["risk_flags"] if f["name"] == "fraud")
    assert fraud["evidence"][0] == {"start": 5, "end": 7, "text": "잠수"}
    assert fraud["escalation"]["article_id"] in ("fraud-report", "off-platform-fraud-victim")


@pytest.mark.parametrize(("text", "audience"), [
    ("주문한 지 5일 됐는데 아직 안 와요", "buyer"),
    ("판매자가 답장을 안 해요", "buyer"),
    ("정산 언제 들어와요?", "seller"),
    ("구매자가 반품 요청했어요", "seller"),
    ("송장 등록했는데 조회가 안 된대요", "seller"),
    ("휴대폰 번호 어디서 바꿔요?", "unknown"),
])
def test_audience_is_inferred_from_the_words(text, audience):
    assert infer_audience(text) == audience


@pytest.mark.parametrize(("text", "flags"), [
    ("판매자가 텔레그램 아이디 주면서 거기로 연락하래요", {"off_platform"}),
    ("안전결제 말고 계좌이체로 하면 더 싸게 해준대요", {"off_platform"}),
    ("가상계좌로 입금했는데 확인이 안돼요", set()),
    ("환불계좌로 보내주신다고 했는데 언제 들어와요", set()),
    ("받은 상품이 가품인 것 같아요 로고가 달라요", {"counterfeit"}),
    ("가품이면 환불 되나요?", set()),
    ("판매자가 돈만 받고 잠수탔어요", {"fraud"}),
    ("혹시 이거 사기인가요? 가격이 너무 싸서요", set()),
    ("사이트 접속이 안돼요 지금 서버 터졌나요?", {"outage"}),
    ("판매자가 카카오페이 송금으로 보내면 깎아준대요", {"off_platform"}),
    ("카카오페이로 결제했는데 영수증은 어디서 봐요?", set()),
    ("오픈카톡 링크 주면서 거기서 얘기하재요", {"off_platform"}),
    ("홈페이지가 점검 중이라고만 나와요", {"outage"}),
    ("점검 기준이 뭐예요? 검수에서 뭘 보나요", set()),
    ("어제 앱 오류 때문에 반품 신청을 못 했어요", set()),
    ("이걸로 벌써 네번째 문의드리는데 답이 없네요", {"repeated_contact"}),
    ("사이즈 교환 두 번째 요청인데 가능할까요", set()),
    ("경찰에 신고했는데 거래내역 좀 보내주세요", set()),
    ("주문번호 R2026112300123 확인 부탁드려요", set()),
    ("수수료 아끼게 입금해 주시면 5천원 빼드릴게요래요", {"off_platform"}),
    ("가까우니까 직접 만나서 거래하재요", {"off_platform"}),
    ("수수료는 몇 퍼센트예요?", set()),
    ("입금하자마자 판매자 프로필이 사라졌어요", {"fraud"}),
    ("로그인이 30분째 안돼요 에러 코드만 떠요", {"outage"}),
    ("앱이 계속 팅겨요", {"outage"}),
    ("비밀번호를 잊어서 로그인을 못 하겠어요", set()),
    ("배송이 3일째 안 와요", set()),
])
def test_risk_cues_and_their_look_alikes(text, flags):
    assert set(find_risks(text)) == flags


def test_analyze_is_safe_from_many_threads_while_learning(new_analyzer, shipped_retriever):
    shared = new_analyzer()
    text = "쿠폰이 적용이 안 돼요"
    vector = shipped_retriever.embedder.query_vector(text)
    retrieval = shipped_retriever.search(text, k=5, query_vector=vector)

    def read(_: int) -> str | None:
        return shared.analyze(text, query_vector=vector, retrieval=retrieval).primary_type

    with ThreadPoolExecutor(max_workers=4) as pool:
        readers = [pool.submit(read, i) for i in range(40)]
        for number in range(5):
            shared.learn(f"전혀 다른 문의 {number}번", ["기능제안"], vector=-vector)
        assert {future.result() for future in readers} == {"쿠폰·포인트"}
    assert shared.learned == 5


def test_analysis_costs_a_few_milliseconds_beyond_the_embedding(analyze):
    result = analyze("택배가 일주일째 안 와요ㅠㅠ 분실된 건 아닌가요? 환불은 받을 수 있어요?")
    assert sum(result.timings_ms.values()) < 50


def test_the_kb_says_which_article_handles_a_flag(shipped_settings, shipped_retriever, analyze):
    """Moving `handles_flags` to another article moves the flag's escalation rule with it."""
    from dataclasses import replace

    def moved(chunk):
        if chunk.article_id == "off-platform-payment":
            return replace(chunk, handles_flags="")
        return chunk

    chunks = [moved(c) for c in load_chunks(shipped_settings)]
    edited = Analyzer(tokenizer=shipped_retriever.tokenizer, embedder=shipped_retriever.embedder,
                      chunks=chunks, chunk_tokens=Indexer(shipped_settings).tokens_for(chunks))
    text = "카톡으로 연락주시면 계좌로 보내드릴게요"
    assert analyze(text).flag("off_platform").escalation.article_id == "off-platform-payment"
    flag = analyze(text, using=edited).flag("off_platform")
    assert flag.escalation.article_id == "off-platform-fraud-victim"
    assert flag.escalation.text == escalation_text("off-platform-fraud-victim")


def test_the_kb_says_when_a_more_specific_article_takes_a_flag(shipped_settings,
                                                              shipped_retriever, analyze):
    """`escalation_when` hands a flag's rule to a more specific article on its cues; editing
    the front matter moves it, with no code change."""
    from dataclasses import replace

    text = "감정서 받아왔는데 가품 판정에 이의 제기하려면 어떻게 해요?"
    assert analyze(text).flag("counterfeit").escalation.article_id == "counterfeit-appeal"
    # Other counterfeit messages keep the owner's rule.
    assert analyze("이거 짝퉁 같아요").flag("counterfeit").escalation.article_id \
        == "counterfeit-policy"

    def edited(cues: str):
        chunks = [replace(c, escalation_when=cues) if c.article_id == "counterfeit-appeal"
                  else c for c in load_chunks(shipped_settings)]
        return Analyzer(tokenizer=shipped_retriever.tokenizer,
                        embedder=shipped_retriever.embedder, chunks=chunks,
                        chunk_tokens=Indexer(shipped_settings).tokens_for(chunks))

    without = edited("")
    assert analyze(text, using=without).flag("counterfeit").escalation.article_id \
        == "counterfeit-policy"
    # A cue the editor adds, written with a space, matches the words run together too.
    broader = edited(json.dumps({"counterfeit": ["짝 퉁"]}, ensure_ascii=False))
    flag = analyze("이거 짝퉁 같아요", using=broader).flag("counterfeit")
    assert flag.escalation.article_id == "counterfeit-appeal"
    assert flag.escalation.text == escalation_text("counterfeit-appeal")


def test_flag_owner_follows_the_kb_it_is_given(shipped_settings):
    """The owner map is cached per KB version, so an edited KB gets its own answer."""
    from dataclasses import replace

    from suggester.reply.analyze import flag_owner

    chunks = load_chunks(shipped_settings)
    assert flag_owner(chunks, "outage") == "outage-response"
    moved = [replace(c, handles_flags="") if c.article_id == "outage-response" else c
             for c in chunks]
    assert flag_owner(moved, "outage") == "site-down-cannot-pay"
    assert flag_owner(chunks, "outage") == "outage-response"


@pytest.mark.parametrize(("text", "flag"), [
    ("구매자가 번개장터로 옮겨서 거래하자고 해요", "off_platform"),
    ("입금 확인되면 보내준다고 판매자 명의 통장으로 넣으래요", "off_platform"),
    ("배송 온 상자를 열었더니 빈 상자였어요", "fraud"),
    ("브랜드 매장에 가져갔더니 자기네 제품이 아니래요", "counterfeit"),
    ("한국소비자원에 피해구제 신청하겠습니다", "legal_threat"),
    ("모든 카드가 결제 실패로 떠요 지금 시스템 문제죠?", "outage"),
    ("전화도 세 번 했고 채팅도 두 번 했어요", "repeated_contact"),
])
def test_flags_hold_beyond_the_cue_words_dev_used(text, flag):
    assert flag in find_risks(text)


@pytest.mark.parametrize(("text", "flag"), [
    ("상대방이 네이버 밴드로 초대할 테니 거기서 결제하재요", "off_platform"),
    ("판매자가 입금 확인했다면서 물건은 안 보내고 읽씹해요", "fraud"),
    ("돈 보냈는데 판매자 상점이 통째로 사라졌어요", "fraud"),
    ("박음질이랑 로고 각인이 정품이랑 달라요", "counterfeit"),
    ("내일 바로 경찰에 사건 접수할 거예요", "legal_threat"),
    ("아까부터 앱 켜면 점검 화면만 떠요", "outage"),
    ("이 문제로 상담만 세 차례 받았어요", "repeated_contact"),
])
def test_the_kb_adds_cues_to_the_analyzers_own(text, flag, analyze):
    """`flag_cues` in the handling article's front matter raise the flag; the code's own
    tables do not know these words."""
    assert flag not in find_risks(text)
    assert flag in analyze(text).flags


def test_an_edited_cue_list_changes_what_raises_a_flag(shipped_settings, shipped_retriever,
                                                       analyze):
    from dataclasses import replace

    text = "법대로 하자고요 끝까지 갑니다"
    assert "legal_threat" in analyze(text).flags
    chunks = [replace(c, flag_cues="") if c.article_id == "legal-threat-complaint" else c
              for c in load_chunks(shipped_settings)]
    edited = Analyzer(tokenizer=shipped_retriever.tokenizer, embedder=shipped_retriever.embedder,
                      chunks=chunks, chunk_tokens=Indexer(shipped_settings).tokens_for(chunks))
    assert "legal_threat" not in analyze(text, using=edited).flags


@pytest.mark.parametrize("text", [
    "카드 말고 무통장입금도 되나요?",  # one of our own payment methods
    "해킹당한 것 같아서 비번 바꿨어요",
    "정품 검수는 얼마나 걸려요?",
])
def test_look_alikes_raise_no_flag(text):
    assert not find_risks(text)


@pytest.mark.parametrize("text", [
    "무통장입금으로 결제했는데 입금 확인은 언제 돼요?",
    "매장에 가서 직접 입어보고 사고 싶어요",
    "입금 확인됐는데 아직 안 보내셨나요?",
    "닉네임 바꾸고 싶은데 어디서 해요?",
    "페이로 결제하면 포인트 적립 되나요?",
])
def test_look_alikes_raise_no_flag_with_the_kb_cues(text, analyze):
    assert not analyze(text).flags
