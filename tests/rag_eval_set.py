"""A parallel Korean/English retrieval set written for this project: invented facts (no model
can know them), near neighbours (pairs of documents on the same kind of thing: two festivals,
two bakeries, two rules), questions with other particles and endings than the documents, and
paraphrases. Each document exists in both languages with the same id; each has two questions
per language. Used by tests/test_rag_eval.py and bench/rag_eval.py.
"""
from __future__ import annotations

# id: (Korean document, English document)
DOCUMENTS: dict[str, tuple[str, str]] = {
    "festival_hanul": (
        "한울시 달빛 축제는 매년 9월 둘째 주 토요일에 강변 공원에서 열린다. 올해는 등불 3천 개가 띄워졌고 입장료는 없다.",
        "The Hanul City Moonlight Festival is held every year on the second Saturday of September in the riverside "
        "park. This year three thousand lanterns were floated and entry is free."),
    "festival_doram": (
        "도람군 눈꽃 축제는 1월 마지막 주에 도람 저수지 얼음 위에서 열린다. 얼음 썰매 대회의 참가비는 오천 원이다.",
        "The Doram County Snowflake Festival takes place in the last week of January on the ice of Doram Reservoir. "
        "The fee for the ice sled race is five thousand won."),
    "bakery_sol": (
        "솔빵집은 매일 아침 7시에 문을 열고 월요일에 쉰다. 가장 많이 팔리는 빵은 쑥 크림빵으로 하루 200개가 팔린다.",
        "Sol Bakery opens at 7 every morning and is closed on Mondays. Its best seller is the mugwort cream bun, "
        "two hundred of which are sold a day."),
    "bakery_moru": (
        "모루 베이커리는 오전 10시에 열고 일요일에 쉰다. 대표 메뉴는 흑임자 바게트이며 예약해야 살 수 있다.",
        "Moru Bakery opens at 10 a.m. and is closed on Sundays. Its signature item is the black sesame baguette, "
        "which can only be bought with a reservation."),
    "rule_leave": (
        "가온전자 직원은 입사 첫해에 연차 휴가 12일을 받고, 3년마다 하루씩 늘어난다. 휴가 신청은 2주 전까지 해야 한다.",
        "Employees of Gaon Electronics receive twelve days of annual leave in their first year, increasing by one "
        "day every three years. Leave must be requested two weeks in advance."),
    "rule_remote": (
        "가온전자의 재택근무는 주 2회까지 허용되며 화요일과 목요일에만 가능하다. 팀장의 승인이 필요하다.",
        "At Gaon Electronics remote work is allowed up to twice a week, only on Tuesdays and Thursdays. It needs "
        "the team leader's approval."),
    "robot_bori": (
        "청소 로봇 보리-3은 한 번 충전하면 140분 동안 움직이고, 먼지통 용량은 0.6리터다. 배터리 교체 비용은 4만 원이다.",
        "The Bori-3 cleaning robot runs for 140 minutes on one charge and its dust bin holds 0.6 litres. Replacing "
        "the battery costs forty thousand won."),
    "robot_nuri": (
        "잔디깎이 로봇 누리-S는 비가 오면 스스로 충전기로 돌아간다. 최대 800제곱미터의 잔디를 관리할 수 있다.",
        "The Nuri-S lawn mowing robot returns to its charger by itself when it rains. It can look after up to "
        "eight hundred square metres of lawn."),
    "library_ara": (
        "아라 도서관에서는 한 번에 책 7권을 3주 동안 빌릴 수 있다. 연체하면 하루에 백 원의 벌금을 낸다.",
        "At Ara Library you can borrow seven books at a time for three weeks. Late returns cost a fine of one "
        "hundred won per day."),
    "museum_tera": (
        "테라 화석 박물관의 대표 전시물은 길이 9미터의 공룡 뼈 '하늘이'이다. 박물관은 매주 화요일에 휴관한다.",
        "The main exhibit of the Tera Fossil Museum is a nine-metre dinosaur skeleton called 'Haneul'. The museum "
        "is closed every Tuesday."),
    "bus_line": (
        "마을버스 17번은 새벽 5시 40분에 첫차가 출발하고 배차 간격은 12분이다. 종점은 푸른언덕 정류장이다.",
        "Village bus number 17 leaves on its first run at 5:40 in the morning and comes every twelve minutes. Its "
        "last stop is Green Hill."),
    "cat_dubu": (
        "우리 집 고양이 두부는 다섯 살이고 연어 사료만 먹는다. 두부는 창가에서 낮잠 자는 것을 제일 좋아한다.",
        "Our cat Dubu is five years old and eats only salmon food. Dubu likes napping by the window best of all."),
    "dog_bam": (
        "옆집 강아지 밤이는 두 살 진돗개로 하루에 두 번 산책한다. 밤이는 천둥소리를 무서워한다.",
        "The neighbour's dog Bam is a two-year-old Jindo who goes for a walk twice a day. Bam is afraid of thunder."),
    "recipe_kimchi": (
        "할머니의 물김치에는 배 한 개와 생강 두 쪽이 들어간다. 실온에서 하루 익힌 뒤 냉장고에 넣는다.",
        "Grandmother's water kimchi takes one pear and two slices of ginger. It ripens for a day at room "
        "temperature before going into the fridge."),
    "recipe_tea": (
        "유자 생강차를 만들려면 유자 1킬로그램에 설탕 800그램을 섞어 일주일 동안 재운다.",
        "To make citron ginger tea, mix one kilogram of citron with eight hundred grams of sugar and let it rest "
        "for a week."),
    "planet_kora": (
        "소설 속 행성 코라에는 달이 세 개 있고 하루가 31시간이다. 주민들은 보라색 이끼를 키워 먹는다.",
        "The planet Kora in the novel has three moons and a day lasts thirty-one hours. Its people grow and eat "
        "purple moss."),
    "contract_office": (
        "사무실 임대 계약은 2027년 3월 31일에 끝나며, 갱신하려면 석 달 전에 알려야 한다. 월세는 180만 원이다.",
        "The office lease ends on 31 March 2027, and renewal must be announced three months ahead. The monthly "
        "rent is 1.8 million won."),
    "server_room": (
        "서버실 온도는 섭씨 22도로 유지해야 하며, 출입 카드는 보안팀에서만 발급한다.",
        "The server room must be kept at 22 degrees Celsius, and access cards are issued only by the security "
        "team."),
    "trail_sonamu": (
        "소나무 숲길은 총 길이가 6.5킬로미터이고 걸어서 두 시간쯤 걸린다. 중간에 약수터가 두 곳 있다.",
        "The Pine Forest Trail is 6.5 kilometres long and takes about two hours on foot. There are two mineral "
        "springs along the way."),
    "trail_bada": (
        "바다 둘레길은 해안 절벽을 따라 4킬로미터 이어지며, 만조 때에는 일부 구간이 통제된다.",
        "The Sea Loop Trail runs four kilometres along the coastal cliffs, and part of it is closed at high tide."),
}

# (question, document id): two per document and language; other particles and endings than
# the documents ("축제는" -> "축제가", "열린다" -> "열리나요"), and paraphrases.
QUESTIONS_KO: list[tuple[str, str]] = [
    ("한울시 달빛 축제가 언제 열리나요?", "festival_hanul"), ("강변에서 등불을 띄우는 축제 입장료가 얼마죠?", "festival_hanul"),
    ("도람 저수지에서 하는 겨울 축제는 몇 월이에요?", "festival_doram"), ("얼음 썰매 대회 참가비를 알려 주세요", "festival_doram"),
    ("솔빵집이 쉬는 날은 무슨 요일인가요?", "bakery_sol"), ("쑥 크림빵은 하루에 몇 개나 팔려요?", "bakery_sol"),
    ("흑임자 바게트를 사려면 어떻게 해야 하죠?", "bakery_moru"), ("모루 베이커리는 몇 시에 여나요?", "bakery_moru"),
    ("신입 사원의 연차는 며칠인가요?", "rule_leave"), ("휴가는 얼마나 미리 신청해야 해요?", "rule_leave"),
    ("집에서 일할 수 있는 요일이 언제예요?", "rule_remote"), ("재택근무를 하려면 누구 승인을 받아야 하나요?", "rule_remote"),
    ("보리-3 배터리를 바꾸는 데 드는 돈은?", "robot_bori"), ("청소 로봇은 충전 한 번에 얼마나 오래 가나요?", "robot_bori"),
    ("비가 올 때 잔디깎이 로봇은 어떻게 하나요?", "robot_nuri"), ("누리-S가 관리할 수 있는 잔디 넓이는?", "robot_nuri"),
    ("아라 도서관에서 책을 몇 권까지 빌릴 수 있어요?", "library_ara"), ("책을 늦게 돌려주면 벌금이 얼마죠?", "library_ara"),
    ("화석 박물관의 공룡 뼈 이름이 뭐예요?", "museum_tera"), ("테라 박물관은 무슨 요일에 문을 닫나요?", "museum_tera"),
    ("17번 마을버스 첫차는 몇 시에 출발해요?", "bus_line"), ("마을버스의 마지막 정류장이 어디인가요?", "bus_line"),
    ("두부라는 고양이는 무엇을 먹나요?", "cat_dubu"), ("우리 고양이가 제일 좋아하는 일은?", "cat_dubu"),
    ("진돗개 밤이는 무엇을 무서워해요?", "dog_bam"), ("옆집 강아지는 하루에 몇 번 산책하나요?", "dog_bam"),
    ("물김치에 배가 몇 개 들어가요?", "recipe_kimchi"), ("할머니 김치는 냉장고에 넣기 전에 얼마나 익히나요?", "recipe_kimchi"),
    ("유자차에 설탕을 얼마나 넣어야 하나요?", "recipe_tea"), ("유자 생강차는 며칠 동안 재워 두죠?", "recipe_tea"),
    ("코라 행성에는 달이 몇 개예요?", "planet_kora"), ("소설 속 행성 사람들은 무엇을 먹고 살아요?", "planet_kora"),
    ("사무실 계약이 언제 끝나죠?", "contract_office"), ("사무실 월세가 얼마예요?", "contract_office"),
    ("서버실은 몇 도로 맞춰야 하나요?", "server_room"), ("출입 카드는 어느 팀에서 받나요?", "server_room"),
    ("소나무 숲길을 걷는 데 시간이 얼마나 걸려요?", "trail_sonamu"), ("숲길 중간에 약수터가 있나요?", "trail_sonamu"),
    ("바다 둘레길은 길이가 얼마인가요?", "trail_bada"), ("밀물 때 해안 산책로는 어떻게 되나요?", "trail_bada"),
]
QUESTIONS_EN: list[tuple[str, str]] = [
    ("When does the Hanul Moonlight Festival take place?", "festival_hanul"),
    ("How much does it cost to get into the lantern festival by the river?", "festival_hanul"),
    ("In which month is the winter festival at Doram Reservoir?", "festival_doram"),
    ("What is the entry fee for the ice sledding race?", "festival_doram"),
    ("Which day of the week is Sol Bakery closed?", "bakery_sol"),
    ("How many mugwort cream buns are sold daily?", "bakery_sol"),
    ("How can I buy the black sesame baguette?", "bakery_moru"),
    ("What time does Moru Bakery open?", "bakery_moru"),
    ("How many days of leave does a new employee get?", "rule_leave"),
    ("How far ahead must holidays be requested?", "rule_leave"),
    ("On which days can staff work from home?", "rule_remote"),
    ("Whose approval do I need to work remotely?", "rule_remote"),
    ("How much is a new battery for the Bori-3?", "robot_bori"),
    ("How long does the cleaning robot last on a single charge?", "robot_bori"),
    ("What does the lawn mower robot do when it starts raining?", "robot_nuri"),
    ("How large a lawn can the Nuri-S handle?", "robot_nuri"),
    ("How many books can I check out of Ara Library?", "library_ara"),
    ("What is the penalty for returning a book late?", "library_ara"),
    ("What is the dinosaur skeleton at the fossil museum called?", "museum_tera"),
    ("On which day is the Tera museum shut?", "museum_tera"),
    ("When does the first number 17 village bus leave?", "bus_line"),
    ("Where is the final stop of the village bus?", "bus_line"),
    ("What food does the cat Dubu eat?", "cat_dubu"),
    ("What is our cat's favourite thing to do?", "cat_dubu"),
    ("What is the Jindo dog Bam scared of?", "dog_bam"),
    ("How often is the neighbour's puppy walked each day?", "dog_bam"),
    ("How many pears go into the water kimchi?", "recipe_kimchi"),
    ("How long does grandma's kimchi ferment before it is refrigerated?", "recipe_kimchi"),
    ("How much sugar goes into citron tea?", "recipe_tea"),
    ("For how many days should the citron ginger mix rest?", "recipe_tea"),
    ("How many moons does Kora have?", "planet_kora"),
    ("What do the people of the fictional planet eat?", "planet_kora"),
    ("When does the office rental agreement expire?", "contract_office"),
    ("How much is the monthly rent for the office?", "contract_office"),
    ("What temperature should the server room be at?", "server_room"),
    ("Which team hands out access cards?", "server_room"),
    ("How long does it take to walk the Pine Forest Trail?", "trail_sonamu"),
    ("Are there springs along the forest trail?", "trail_sonamu"),
    ("How long is the Sea Loop Trail?", "trail_bada"),
    ("What happens to the coastal path at high tide?", "trail_bada"),
]
# Questions on nothing in the set: retrieval should return nothing for them.
UNRELATED_KO = ["양자역학의 불확정성 원리를 설명해 줘", "내일 날씨가 어때요?", "파이썬에서 리스트를 정렬하는 방법은?",
                "세계에서 가장 높은 산은?"]
UNRELATED_EN = ["Explain the uncertainty principle of quantum mechanics.", "What will the weather be tomorrow?",
                "How do I sort a list in Python?", "Which is the highest mountain in the world?"]
