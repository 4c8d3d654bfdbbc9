"""Korean and English texts of the dashboards, and the choice between them.

The language comes from ``?lang=`` (the switch, which also sets a cookie), then the ``lang`` cookie,
then the browser's ``Accept-Language``; English when nothing asks for Korean.
"""

from __future__ import annotations

from typing import Literal

from starlette.requests import Request

Lang = Literal["en", "ko"]
LANGS: tuple[Lang, ...] = ("en", "ko")
COOKIE = "twinedge_lang"

#: key -> (English, Korean)
MESSAGES: dict[str, tuple[str, str]] = {
    "app": ("TwinEdge dashboards", "TwinEdge 대시보드"),
    "nav.fleet": ("Fleet", "설비 현황"),
    "nav.alarms": ("Alarms", "알람"),
    "nav.catalogue": ("Reference models", "참조 모델"),
    "nav.adoption": ("AI adoption", "AI 도입 수준"),
    "lang.switch": ("한국어", "English"),
    "fleet.title": ("Fleet overview", "설비 현황"),
    "fleet.factory_oee": ("Factory OEE", "공장 OEE"),
    "fleet.line": ("Line", "라인"),
    "fleet.assets": ("assets", "대"),
    "fleet.window": ("OEE over the last {hours} h", "최근 {hours}시간 OEE"),
    "col.asset": ("Asset", "설비"),
    "col.state": ("State", "상태"),
    "col.health": ("Health index", "건전성 지수"),
    "col.alarms": ("Active alarms", "활성 알람"),
    "col.oee": ("OEE", "OEE"),
    "col.last": ("Last data", "최근 데이터"),
    "col.signal": ("Signal", "신호"),
    "col.value": ("Value", "값"),
    "col.unit": ("Unit", "단위"),
    "col.quality": ("Quality", "품질"),
    "col.time": ("Time", "시각"),
    "col.severity": ("Severity", "심각도"),
    "col.alarm": ("Alarm", "알람"),
    "col.model": ("Model", "모델"),
    "col.version": ("Version", "버전"),
    "col.status": ("Status", "상태"),
    "col.download": ("Download", "다운로드"),
    "col.owners": ("Owners", "담당"),
    "col.changes": ("Changes", "변경 내역"),
    "col.area": ("Area", "영역"),
    "col.score": ("Score", "점수"),
    "col.level": ("Level", "수준"),
    "col.indicator": ("Indicator", "지표"),
    "col.source": ("Evidence", "근거"),
    "state.producing": ("Producing", "생산 중"),
    "state.idle": ("Idle", "대기"),
    "state.fault": ("Fault", "고장"),
    "state.offline": ("Offline", "연결 끊김"),
    "state.no-data": ("No data yet", "데이터 없음"),
    "empty.fleet.title": ("No twins yet", "아직 트윈이 없습니다"),
    "empty.fleet.body": (
        "This server holds no asset twins. Create one with `twinedge demo` and load it with "
        "`twinedge server --load twinedge-data/press-01.json`, or POST a shell and its submodels to the AAS API.",
        "이 서버에는 아직 설비 트윈이 없습니다. `twinedge demo`로 트윈을 만들고 "
        "`twinedge server --load twinedge-data/press-01.json`으로 불러오거나, AAS API로 셸과 서브모델을 등록하세요."),
    "empty.agent": (
        "No live data has arrived yet. Start the edge agent (`twinedge agent run --config agent.yaml`) pointed at "
        "this server; values appear here as soon as it writes them.",
        "아직 실시간 데이터가 들어오지 않았습니다. 이 서버를 대상으로 엣지 에이전트를 실행하세요 "
        "(`twinedge agent run --config agent.yaml`). 값이 기록되는 즉시 여기에 표시됩니다."),
    "empty.analytics": (
        "No analytics results yet. Run `twinedge analytics` against this server to get health, anomaly and "
        "SPC results.",
        "아직 분석 결과가 없습니다. 이 서버를 대상으로 `twinedge analytics`를 실행하면 "
        "건전성·이상·SPC 결과가 표시됩니다."),
    "empty.alarms": ("No active alarms.", "활성 알람이 없습니다."),
    "empty.catalogue": (
        "No reference models found. Create one with `twinedge models new` in a `reference_models/` folder next to "
        "the server's data directory.",
        "참조 모델이 없습니다. 서버 데이터 디렉터리 옆 `reference_models/` 폴더에서 `twinedge models new`로 만드세요."),
    "empty.history": ("No history for this signal yet.", "이 신호의 이력이 아직 없습니다."),
    "asset.nameplate": ("Nameplate", "명판"),
    "asset.live": ("Live values", "실시간 값"),
    "asset.trend": ("Trend", "추세"),
    "asset.zoom": ("Drag across the chart to zoom in.", "차트를 드래그하면 확대됩니다."),
    "asset.reset": ("Reset zoom", "확대 초기화"),
    "asset.condition": ("Condition", "설비 상태"),
    "asset.health": ("Health index", "건전성 지수"),
    "asset.anomaly": ("Anomaly score", "이상 점수"),
    "asset.threshold": ("threshold", "임계값"),
    "asset.fault": ("Fault class", "고장 유형"),
    "asset.rul": ("Remaining useful life", "잔존 수명"),
    "asset.model": ("Model", "모델"),
    "asset.spc": ("SPC chart", "SPC 관리도"),
    "asset.spc.state": ("SPC state (analytics)", "SPC 상태 (분석)"),
    "asset.spc.note": (
        "X-bar and R chart of subgroups of {n} consecutive samples; limits from the mean subgroup range "
        "(A2, D3, D4). Points that break a rule are marked red.",
        "연속 {n}개 표본을 부분군으로 한 X-bar·R 관리도입니다. 관리한계는 부분군 범위의 평균(A2, D3, D4)으로 "
        "계산합니다. 규칙을 위반한 점은 빨간색으로 표시됩니다."),
    "asset.spc.few": ("Not enough history for a control chart yet.", "관리도를 그리기에는 이력이 부족합니다."),
    "asset.kpi": ("Production KPIs", "생산 지표"),
    "asset.availability": ("Availability", "가동률"),
    "asset.performance": ("Performance", "성능"),
    "asset.quality": ("Quality", "품질"),
    "asset.mtbf": ("MTBF", "MTBF"),
    "asset.mttr": ("MTTR", "MTTR"),
    "asset.alarms": ("Alarm history", "알람 이력"),
    "asset.connected": ("live", "실시간"),
    "asset.disconnected": ("reconnecting…", "재연결 중…"),
    "alarms.title": ("Active alarms", "활성 알람"),
    "severity.critical": ("critical", "위험"),
    "severity.warning": ("warning", "경고"),
    "alarm.health_low": ("Health index low: {value}", "건전성 지수 낮음: {value}"),
    "alarm.anomaly": ("Anomaly score {value} above threshold {threshold}",
                      "이상 점수 {value}, 임계값 {threshold} 초과"),
    "alarm.fault": ("Fault predicted: {value} ({p})", "고장 예측: {value} ({p})"),
    "alarm.spc": ("Process out of control: {value}", "공정 관리 이탈: {value}"),
    "alarm.quality_bad": ("Bad signal quality: {value}", "신호 품질 불량: {value}"),
    "alarm.stale": ("No data for {value}", "{value} 동안 데이터 없음"),
    "alarm.rul_low": ("Remaining life below {value} h", "잔존 수명 {value}시간 미만"),
    "catalogue.title": ("Reference-model catalogue", "참조 모델 카탈로그"),
    "catalogue.diff": ("Changes between versions", "버전 간 변경 사항"),
    "catalogue.compare": ("Compare", "비교"),
    "catalogue.added": ("added", "추가"),
    "catalogue.removed": ("removed", "삭제"),
    "catalogue.changed": ("changed", "변경"),
    "catalogue.same": ("No differences.", "차이가 없습니다."),
    "adoption.title": ("AI-adoption level", "AI 도입 수준"),
    "adoption.level": ("Level", "수준"),
    "adoption.score": ("Score", "점수"),
    "adoption.scope.factory": ("Factory", "공장"),
    "adoption.scope.line": ("Line", "라인"),
    "adoption.scope.asset": ("Asset", "설비"),
    "adoption.none": ("below level 1", "1수준 미만"),
    "adoption.missing": ("What is missing for level {level} ({name})", "{level}수준({name})에 필요한 것"),
    "adoption.points": ("{points} more points overall", "총점 {points}점 더 필요"),
    "adoption.top": ("The highest level is reached.", "최고 수준에 도달했습니다."),
    "adoption.areas": ("Score per area", "영역별 점수"),
    "adoption.indicators": ("Indicators", "지표"),
    "adoption.questionnaire": ("Questionnaire", "설문"),
    "adoption.questionnaire.note": (
        "Answer what the platform cannot measure. Saving needs the writer role.",
        "플랫폼이 측정할 수 없는 항목에 답하세요. 저장하려면 writer 권한이 필요합니다."),
    "adoption.save": ("Save answers and record the assessment", "응답 저장 및 평가 기록"),
    "adoption.saved": ("Saved.", "저장했습니다."),
    "adoption.history": ("History", "이력"),
    "adoption.history.empty": ("No assessment recorded yet.", "기록된 평가가 없습니다."),
    "adoption.print": ("Printable report", "인쇄용 보고서"),
    "adoption.report": ("AI-adoption assessment report", "AI 도입 수준 평가 보고서"),
    "adoption.model": ("Assessment model", "평가 모델"),
    "adoption.unanswered": ("not answered", "미응답"),
    "source.platform": ("measured", "측정"),
    "source.questionnaire": ("answered", "설문"),
    "source.none": ("no evidence", "근거 없음"),
    "login.title": ("Sign in", "로그인"),
    "login.body": (
        "This server requires a token. Paste a token issued with `twinedge server-token`.",
        "이 서버는 토큰이 필요합니다. `twinedge server-token`으로 발급한 토큰을 붙여 넣으세요."),
    "login.token": ("Token", "토큰"),
    "login.submit": ("Sign in", "로그인"),
    "login.bad": ("That token is not valid.", "유효하지 않은 토큰입니다."),
    "forbidden": ("Your token's role does not allow this: {text}", "토큰의 권한으로는 할 수 없습니다: {text}"),
    "notfound": ("Not found: {text}", "찾을 수 없음: {text}"),
    "adoption.equipment": ("How many machines does the factory have?", "공장의 설비는 몇 대입니까?"),
    "yes": ("yes", "예"),
    "no": ("no", "아니오"),
    "hours": ("h", "시간"),
    "back": ("Back", "돌아가기"),
}


def choose(request: Request) -> Lang:
    """The page language: ?lang=, then the cookie, then Accept-Language (ko before en wins Korean)."""
    for candidate in (request.query_params.get("lang"), request.cookies.get(COOKIE)):
        if candidate in LANGS:
            return "ko" if candidate == "ko" else "en"
    for part in request.headers.get("accept-language", "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("ko"):
            return "ko"
        if tag.startswith("en"):
            return "en"
    return "en"


def t(key: str, lang: Lang, **args: object) -> str:
    """The text for `key` (KeyError for an unknown key: every text must exist in both languages)."""
    en, ko = MESSAGES[key]
    text = ko if lang == "ko" else en
    return text.format(**args) if args else text
