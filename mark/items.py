"""PKC Mark's task sets, written for this project (no borrowed benchmark data): each task has at
least 20 items in Korean and 20 in English, made by code from fixed seeds so every run asks the
same questions and every answer can be scored without a judge model.

- instruct: checkable constraints (the language, at most N sentences, a word to include, a list
  of exactly K items);
- reasoning: exact answers (arithmetic word problems, days of the week) and multiple choice with
  the answer letter held to A-D by a grammar;
- summary: the key facts of a short text kept, none invented (numbers not in the text);
- documents: questions on a small fixed library (LIBRARY), answered from the passages the
  project's own retrieval finds; the answer must hold the fact and cite the right passage [n];
- json: an object with given keys and types, filled from a sentence;
- code: a Python function, scored by hidden unit tests run in the sandbox (pass@1);
- tools: the project's tool set (mark/tool_set.py), the right tool first or rightly none;
- vision (vision models): questions on pictures drawn here with a known shape and colour.
"""
from __future__ import annotations

import datetime
import random
from dataclasses import dataclass, field

from mark.tool_set import ITEMS as TOOL_ITEMS

SUITE_VERSION = "pkc-mark-1"
TASKS = ("instruct", "reasoning", "summary", "documents", "json", "code", "tools", "vision")
LANGUAGES = ("ko", "en")


@dataclass(frozen=True)
class Item:
    task: str
    language: str
    prompt: str
    check: dict = field(default_factory=dict, hash=False)  # what the scorer needs (mark/scoring.py)
    max_tokens: int = 160
    choices: tuple[str, ...] = ()  # multiple choice: the answer is held to one of these by a grammar


TOPICS = {"ko": ["봄철 건강 관리", "재택근무", "서울 여행", "독서 습관", "전기차", "커피", "운동", "절약", "반려견", "시험 공부"],
          "en": ["spring health", "remote work", "a trip to Seoul", "reading habits", "electric cars", "coffee",
                 "exercise", "saving money", "dogs", "exam study"]}
WORDS = {"ko": ["계획", "물", "시간", "친구", "음악"], "en": ["plan", "water", "time", "friend", "music"]}


def _instruct(language: str) -> list[Item]:
    rng, items = random.Random(11), []
    for index in range(20):
        topic = TOPICS[language][index % 10]
        word = WORDS[language][index % 5]
        if index % 2 == 0:
            count = rng.randint(3, 5)
            prompt = (f"'{topic}'에 대한 팁을 정확히 {count}개의 글머리표 목록(- 로 시작)으로 쓰세요. '{word}'라는 단어를 꼭 넣으세요."
                      if language == "ko" else
                      f"Write exactly {count} tips about {topic} as a bulleted list (lines starting with -). "
                      f"Use the word '{word}'.")
            check = {"language": language, "bullets": count, "include": word}
        else:
            sentences = rng.randint(1, 3)
            prompt = (f"'{topic}'에 대해 한국어로 {sentences}문장 이하로 설명하세요. '{word}'라는 단어를 넣으세요."
                      if language == "ko" else
                      f"Explain {topic} in English in at most {sentences} sentences. Include the word '{word}'.")
            check = {"language": language, "max_sentences": sentences, "include": word}
        items.append(Item("instruct", language, prompt, check))
    return items


def _reasoning(language: str) -> list[Item]:
    rng, items = random.Random(23), []
    for _ in range(12):
        a, b, c = rng.randint(12, 90), rng.randint(3, 30), rng.randint(2, 9)
        prompt = (f"상자에 사과가 {a}개 있었습니다. {b}개를 더 넣고, 그 뒤 전체를 {c}명이 똑같이 나누고 남은 것은 버렸습니다. "
                  "한 명이 받은 사과는 몇 개입니까? 숫자만 답하세요." if language == "ko" else
                  f"A box held {a} apples. {b} more were added, then {c} people shared all of them equally and the "
                  "rest were thrown away. How many apples did each person get? Answer with the number only.")
        items.append(Item("reasoning", language, prompt, {"number": (a + b) // c}, 48))
    days = {"ko": ["월요일", "화요일", "수요일", "목요일", "금요일", "토요일", "일요일"],
            "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]}
    for _ in range(8):
        start = datetime.date(2026, 1, 1) + datetime.timedelta(days=rng.randint(0, 300))
        later = rng.randint(2, 40)
        answer = days[language][(start + datetime.timedelta(days=later)).weekday()]
        given = days[language][start.weekday()]
        prompt = (f"{start.isoformat()}은 {given}입니다. {later}일 뒤는 무슨 요일입니까? 요일만 답하세요."
                  if language == "ko" else
                  f"{start.isoformat()} is a {given}. What day of the week is it {later} days later? Answer with the day only.")
        items.append(Item("reasoning", language, prompt, {"word": answer, "others": days[language]}, 32))
    for _ in range(6):  # multiple choice: which is largest
        values = rng.sample(range(11, 99), 4)
        options = " ".join(f"{letter}) {value * 3}" for letter, value in zip("ABCD", values))
        prompt = (f"다음 중 가장 큰 수는? {options}. 알파벳 하나로 답하세요." if language == "ko" else
                  f"Which is the largest number? {options}. Answer with one letter.")
        items.append(Item("reasoning", language, prompt, {"letter": "ABCD"[values.index(max(values))]}, 4, ("A", "B", "C", "D")))
    return items


FACTS = [("한빛도서관", "Hanbit Library", 1987, 320000, "수원", "Suwon"), ("푸른공원", "Green Park", 2004, 45, "대구", "Daegu"),
         ("새벽시장", "Dawn Market", 1962, 850, "여수", "Yeosu"), ("하늘다리", "Sky Bridge", 2015, 1240, "원주", "Wonju")]


def _summary(language: str) -> list[Item]:
    items = []
    for index in range(20):
        ko, en, year, number, city_ko, city_en = FACTS[index % 4]
        year += index // 4
        if language == "ko":
            text = (f"{ko}은(는) {city_ko}에 있으며 {year}년에 문을 열었다. 지금까지 {number}명이 넘는 사람이 다녀갔다. "
                    "주말에는 시민 강좌가 열리고, 평일에는 조용히 쉬어 갈 수 있다. 주변에는 작은 카페가 여럿 있다.")
            prompt = f"다음 글을 한 문장으로 요약하세요. 연도와 숫자를 빠뜨리지 마세요.\n\n{text}"
            facts = [ko, city_ko, str(year), str(number)]
        else:
            text = (f"{en} is in {city_en} and opened in {year}. More than {number} people have visited it so far. "
                    "Public talks are held at weekends, and on weekdays it is a quiet place to rest. Small cafes surround it.")
            prompt = f"Summarize the text in one sentence. Keep the year and the number.\n\n{text}"
            facts = [en, city_en, str(year), str(number)]
        items.append(Item("summary", language, prompt, {"facts": facts, "source": text}, 96))
    return items


PEOPLE = [("김민지", 29, "부산", "Kim Minji", "Busan"), ("이준호", 41, "대전", "Lee Junho", "Daejeon"),
          ("박서연", 35, "광주", "Park Seoyeon", "Gwangju"), ("최도윤", 52, "인천", "Choi Doyun", "Incheon"),
          ("정하은", 23, "제주", "Jung Haeun", "Jeju")]


def _json(language: str) -> list[Item]:
    items = []
    for index in range(20):
        name_ko, age, city_ko, name_en, city_en = PEOPLE[index % 5]
        age += index // 5
        if language == "ko":
            prompt = (f"다음 문장에서 정보를 뽑아 JSON 객체 하나로만 답하세요. 키: name(문자열), age(정수), city(문자열).\n"
                      f"문장: {city_ko}에 사는 {name_ko} 씨는 올해 {age}살입니다.")
            expected = {"name": name_ko, "age": age, "city": city_ko}
        else:
            prompt = (f"Extract the facts into one JSON object and answer with it only. Keys: name (string), age (integer), "
                      f"city (string).\nSentence: {name_en}, who lives in {city_en}, is {age} years old.")
            expected = {"name": name_en, "age": age, "city": city_en}
        items.append(Item("json", language, prompt, {"expected": expected}, 96))
    return items


CODE = [  # function name, Korean task, English task, hidden tests (Python asserts)
    ("add", "두 수 a, b의 합을 돌려주는 함수 add(a, b)", "a function add(a, b) returning the sum", ["add(2, 3) == 5", "add(-1, 1) == 0"]),
    ("reverse_text", "문자열을 뒤집어 돌려주는 함수 reverse_text(s)", "a function reverse_text(s) returning s reversed",
     ["reverse_text('abc') == 'cba'", "reverse_text('') == ''"]),
    ("is_even", "정수가 짝수면 True를 돌려주는 함수 is_even(n)", "a function is_even(n) returning True for even n",
     ["is_even(4) is True", "is_even(7) is False"]),
    ("maximum", "리스트의 가장 큰 값을 돌려주는 함수 maximum(xs)", "a function maximum(xs) returning the largest item",
     ["maximum([3, 9, 2]) == 9", "maximum([-5, -2]) == -2"]),
    ("count_vowels", "영어 모음(a,e,i,o,u) 개수를 세는 함수 count_vowels(s)", "a function count_vowels(s) counting a, e, i, o, u",
     ["count_vowels('banana') == 3", "count_vowels('xyz') == 0"]),
    ("factorial", "n! 을 돌려주는 함수 factorial(n)", "a function factorial(n) returning n!",
     ["factorial(0) == 1", "factorial(5) == 120"]),
    ("is_palindrome", "앞뒤가 같은 문자열이면 True인 함수 is_palindrome(s)", "a function is_palindrome(s), True when s reads the same backwards",
     ["is_palindrome('level') is True", "is_palindrome('abc') is False"]),
    ("fizzbuzz", "1..n의 FizzBuzz 문자열 리스트를 돌려주는 함수 fizzbuzz(n)", "a function fizzbuzz(n) returning the FizzBuzz strings for 1..n",
     ["fizzbuzz(5) == ['1', '2', 'Fizz', '4', 'Buzz']", "fizzbuzz(15)[-1] == 'FizzBuzz'"]),
    ("digit_sum", "정수의 각 자리 숫자 합을 돌려주는 함수 digit_sum(n)", "a function digit_sum(n) summing the digits of n",
     ["digit_sum(1234) == 10", "digit_sum(0) == 0"]),
    ("unique", "순서를 지키며 중복을 없앤 리스트를 돌려주는 함수 unique(xs)", "a function unique(xs) dropping repeats, keeping order",
     ["unique([1, 2, 1, 3, 2]) == [1, 2, 3]", "unique([]) == []"]),
    ("celsius", "화씨를 섭씨로 바꾸는 함수 celsius(f)", "a function celsius(f) converting Fahrenheit to Celsius",
     ["abs(celsius(212) - 100) < 1e-9", "abs(celsius(32)) < 1e-9"]),
    ("word_count", "공백으로 나눈 단어 수를 돌려주는 함수 word_count(s)", "a function word_count(s) counting whitespace-separated words",
     ["word_count('a b  c') == 3", "word_count('') == 0"]),
    ("second_largest", "두 번째로 큰 서로 다른 값을 돌려주는 함수 second_largest(xs)", "a function second_largest(xs) returning the second largest distinct value",
     ["second_largest([4, 1, 4, 3]) == 3", "second_largest([10, 20]) == 10"]),
    ("is_prime", "소수면 True를 돌려주는 함수 is_prime(n)", "a function is_prime(n) returning True for primes",
     ["is_prime(13) is True", "is_prime(1) is False", "is_prime(21) is False"]),
    ("fibonacci", "n번째 피보나치 수(0번째=0, 1번째=1)를 돌려주는 함수 fibonacci(n)", "a function fibonacci(n) with fibonacci(0)=0, fibonacci(1)=1",
     ["fibonacci(10) == 55", "fibonacci(1) == 1"]),
    ("capitalize_words", "각 단어의 첫 글자를 대문자로 바꾸는 함수 capitalize_words(s)", "a function capitalize_words(s) capitalising each word's first letter",
     ["capitalize_words('hello world') == 'Hello World'"]),
    ("flatten", "한 단계 중첩 리스트를 펼치는 함수 flatten(xss)", "a function flatten(xss) flattening one level of nesting",
     ["flatten([[1, 2], [3], []]) == [1, 2, 3]"]),
    ("average", "리스트의 평균을 돌려주는 함수 average(xs)", "a function average(xs) returning the mean",
     ["average([1, 2, 3, 4]) == 2.5"]),
    ("char_freq", "글자별 개수 딕셔너리를 돌려주는 함수 char_freq(s)", "a function char_freq(s) returning a dict of character counts",
     ["char_freq('aab') == {'a': 2, 'b': 1}"]),
    ("gcd", "두 양의 정수의 최대공약수를 돌려주는 함수 gcd(a, b)", "a function gcd(a, b) returning the greatest common divisor",
     ["gcd(12, 18) == 6", "gcd(7, 5) == 1"]),
]


def _code(language: str) -> list[Item]:
    items = []
    for name, korean, english, tests in CODE:
        prompt = (f"파이썬으로 {korean}를 작성하세요. 코드 블록 하나로만 답하세요." if language == "ko" else
                  f"Write {english} in Python. Answer with one code block only.")
        items.append(Item("code", language, prompt, {"function": name, "tests": tests}, 256))
    return items


def _tools(language: str) -> list[Item]:
    return [Item("tools", language, request, {"tool": tool, "arguments": wanted}, 96)
            for lang, request, tool, wanted in TOOL_ITEMS if lang == language]


LIBRARY = {  # name -> text: the documents task's fixed library (written for this project)
    "휴가 규정.md": "직원은 매년 15일의 연차 휴가를 받는다. 연차는 인사 포털에서 사흘 전까지 신청한다. 병가는 연 10일까지 유급이다.",
    "출장 규정.md": "국내 출장 일비는 하루 30,000원이다. 해외 출장 일비는 하루 60달러이며, 숙박비는 실비로 정산한다.",
    "식당 안내.md": "사내 식당은 오전 11시 30분에 열고 오후 1시 30분에 닫는다. 점심 한 끼는 6,500원이다.",
    "travel-policy.md": "Domestic trips get a daily allowance of 40 dollars. Flights must be booked 14 days ahead. "
                        "Hotels are capped at 150 dollars a night.",
    "it-guide.md": "Passwords must be changed every 90 days. The help desk answers on extension 4321. "
                   "Laptops are replaced every four years.",
    "library-hours.md": "The company library opens at 8 am and closes at 7 pm. Books may be kept for 21 days.",
}
QUESTIONS = {  # (question, the document that answers it, the fact the answer must hold)
    "ko": [("연차 휴가는 며칠인가요?", "휴가 규정.md", "15"), ("병가는 며칠까지 유급인가요?", "휴가 규정.md", "10"),
           ("연차는 며칠 전까지 신청해야 하나요?", "휴가 규정.md", "사흘"), ("국내 출장 일비는 얼마인가요?", "출장 규정.md", "30,000"),
           ("해외 출장 일비는 얼마인가요?", "출장 규정.md", "60"), ("숙박비는 어떻게 정산하나요?", "출장 규정.md", "실비"),
           ("사내 식당은 몇 시에 여나요?", "식당 안내.md", "11시 30분"), ("점심 한 끼는 얼마인가요?", "식당 안내.md", "6,500"),
           ("식당은 몇 시에 닫나요?", "식당 안내.md", "1시 30분"), ("비밀번호는 며칠마다 바꿔야 하나요?", "it-guide.md", "90"),
           ("헬프데스크 내선 번호는?", "it-guide.md", "4321"), ("노트북은 몇 년마다 교체하나요?", "it-guide.md", "4"),
           ("회사 도서관은 몇 시에 여나요?", "library-hours.md", "8"), ("책은 며칠 동안 빌릴 수 있나요?", "library-hours.md", "21"),
           ("국내 출장 하루 수당은 달러로 얼마인가요?", "travel-policy.md", "40"), ("항공권은 며칠 전에 예약해야 하나요?", "travel-policy.md", "14"),
           ("호텔 숙박 한도는 하룻밤 얼마인가요?", "travel-policy.md", "150"), ("도서관은 몇 시에 닫나요?", "library-hours.md", "7"),
           ("해외 출장 숙박비 정산 방식은?", "출장 규정.md", "실비"), ("연차 신청은 어디서 하나요?", "휴가 규정.md", "포털")],
    "en": [("How many days of annual leave do employees get?", "휴가 규정.md", "15"),
           ("What is the daily allowance for domestic trips in dollars?", "travel-policy.md", "40"),
           ("How many days ahead must flights be booked?", "travel-policy.md", "14"),
           ("What is the hotel cap per night?", "travel-policy.md", "150"),
           ("How often must passwords be changed?", "it-guide.md", "90"),
           ("What is the help desk extension?", "it-guide.md", "4321"),
           ("How often are laptops replaced?", "it-guide.md", "four"),
           ("When does the company library open?", "library-hours.md", "8"),
           ("How long may books be kept?", "library-hours.md", "21"),
           ("When does the company library close?", "library-hours.md", "7"),
           ("How many paid sick days are there per year?", "휴가 규정.md", "10"),
           ("What is the domestic daily allowance in won?", "출장 규정.md", "30,000"),
           ("What is the overseas daily allowance?", "출장 규정.md", "60"),
           ("What does a lunch cost in the company cafeteria?", "식당 안내.md", "6,500"),
           ("When does the cafeteria open?", "식당 안내.md", "11"),
           ("Which extension do I call for IT help?", "it-guide.md", "4321"),
           ("How many days before must annual leave be requested?", "휴가 규정.md", "3"),
           ("Are hotel costs capped for trips? By how much?", "travel-policy.md", "150"),
           ("Until what time is the library open?", "library-hours.md", "7"),
           ("How are overseas hotel costs settled?", "출장 규정.md", "actual")],
}


def _documents(language: str) -> list[Item]:
    return [Item("documents", language, question, {"document": document, "fact": fact}, 96)
            for question, document, fact in QUESTIONS[language]]


# the Korean colour words by their stem: 빨강/빨간(색), 파랑/파란, 초록, 노랑/노란 all count
COLOURS = [((220, 30, 30), "빨", "red"), ((30, 90, 220), "파", "blue"), ((30, 160, 60), "초록", "green"),
           ((240, 200, 20), "노", "yellow")]
SHAPES = [("circle", "원", "circle"), ("square", "사각형", "square")]


WORDS_IN_PICTURES = ["CAT", "SUN", "TREE", "BOOK"]


def picture_png(shape: str, rgb: tuple[int, int, int]) -> bytes:
    """A 256x256 white picture with one filled shape in the middle, or a word written large
    (shape "text:WORD"): the vision task's pictures."""
    import io

    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (256, 256), "white")
    draw = ImageDraw.Draw(image)
    if shape.startswith("text:"):
        draw.text((128, 128), shape[5:], fill=rgb, anchor="mm", font=ImageFont.load_default(size=64))
    else:
        (draw.ellipse if shape == "circle" else draw.rectangle)((64, 64, 192, 192), fill=rgb)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _vision(language: str) -> list[Item]:
    items = []
    for index in range(20):
        rgb, colour_ko, colour_en = COLOURS[(index // 2) % 4]
        shape, shape_ko, shape_en = SHAPES[(index // 4) % 2]
        if index % 5 == 4:  # a word written in the picture
            word = WORDS_IN_PICTURES[(index // 5) % 4]
            prompt = "그림에 쓰인 영어 단어는 무엇입니까? 그 단어만 답하세요." if language == "ko" else \
                "What word is written in the picture? Answer with the word only."
            items.append(Item("vision", language, prompt, {"word": word, "picture": [f"text:{word}", [20, 20, 20]]}, 16))
            continue
        if index % 2 == 0:
            prompt = "그림 속 도형은 무슨 색입니까? 색 이름 하나로 답하세요." if language == "ko" else \
                "What colour is the shape in the picture? Answer with one colour word."
            expected = colour_ko if language == "ko" else colour_en
        else:
            prompt = "그림 속 도형은 원입니까, 사각형입니까? 한 단어로 답하세요." if language == "ko" else \
                "Is the shape in the picture a circle or a square? Answer with one word."
            expected = shape_ko if language == "ko" else shape_en
        items.append(Item("vision", language, prompt, {"word": expected, "picture": [shape, list(rgb)]}, 16))
    return items


MAKERS = {"instruct": _instruct, "reasoning": _reasoning, "summary": _summary, "documents": _documents, "json": _json,
          "code": _code, "tools": _tools, "vision": _vision}


def items(task: str, quick: bool = False) -> list[Item]:
    """A task's items in both languages (quick: 5 of each, spread over the set's kinds)."""
    made = []
    for language in LANGUAGES:
        per_language = MAKERS[task](language)
        made.extend(per_language[:: len(per_language) // 5][:5] if quick else per_language)
    return made
