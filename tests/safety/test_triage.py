"""The triage rules: levels with reasons, the modifiers, the lexicon as data, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from peerlift.cli import app
from peerlift.safety import pii
from peerlift.safety.triage import RANK, LexiconError, evaluate, load

DATA = Path(__file__).parents[1] / "data"
runner = CliRunner()


@pytest.fixture(scope="module")
def lexicon():
    return load()


@pytest.mark.parametrize("text, level", [
    ("I want to die", "red"),
    ("I would never hurt myself", "green"),
    ("my friend once said she wanted to die", "green"),
    ("in the film he kills himself at the end", "green"),
    ("years ago I tried to end it, I'm in a better place now", "green"),
    ("years ago I tried to end it and lately the same thoughts are coming back", "red"),
    ("I'm going to kill myself tonight", "crisis"),
    ("this diet is killing me", "green"),
    ("feeling hopeless and I cry every night", "amber"),
    ("my blood sugar is 2.1 and I'm confused and shaking", "crisis"),
    # a usual dose, a fright of good news, ketosis sought on a diet, a rattle, iron tablets
    ("took two paracetamol for my headache", "green"),
    ("took two boxes of paracetamol an hour ago", "crisis"),
    ("I almost passed out from shock when my jeans fitted", "green"),
    ("keto week 3, ketones are high, loving the energy", "green"),
    ("type 1 here, ketones are high and I keep vomiting", "crisis"),
    ("the baby shook her rattle at me", "green"),
    ("I shook her so hard she cried", "red"),
    ("black poo since starting the ferrous sulphate", "green"),
    ("black stools for two days and feeling faint", "red"),
    ("took all my tablets this morning as usual", "green"),
    ("took all my tablets an hour ago, goodbye", "crisis"),
    ("by the time you read this I'll be on the plane", "green"),
    ("by the time you read this I'll be gone", "crisis"),
    ("I'm on the bridge club committee now", "green"),
])
def test_levels(lexicon, text, level):
    assert lexicon.triage(text).level == level


@pytest.mark.parametrize("text, level", [
    # a goodbye to the group is ordinary when the writer says where they go next, crisis with risk near
    ("Saying goodbye to the group, I've finished the 12 weeks and I'm moving on to the maintenance group!", "green"),
    ("Last post from me on this thread, going to start a new one for the walking challenge", "green"),
    ("Saying goodbye to the group. I won't be around much longer. Love you all", "crisis"),
    ("Last post from me. I won't be here tomorrow.", "crisis"),
    ("saying goodbye to sugar in my tea, farewell old friend", "green"),
    # affairs in order: ordinary with an ordinary reason, risk with 'just in case', crisis with a time
    ("I've sorted out my will and power of attorney with the solicitor, nothing dramatic", "green"),
    ("I've been putting my affairs in order, just in case.", "red"),
    ("I've sorted out my will. Tonight I'll take the tablets.", "crisis"),
    # a joke the writer flags as one is set aside, unless taken back; a crisis never is
    ("kms if my boss talks about keto once more (obvs not literally lol)", "green"),
    ("kms. not joking. I want to die", "red"),
    ("I'm going to kill myself tonight, jk", "crisis"),
    # "rather X than" an everyday chore is a comparison, not a wish
    ("I'd rather die than do another burpee", "green"),
    ("I'd rather be dead than face another day like this", "red"),
    # a lapse promised never to come back is not told as present
    ("Never in a million years would I skip my insulin again, that DKA admission at 19 taught me.", "green"),
    # a question put to the writer about risk, answered no
    ("My counsellor asked me whether I ever think about suicide and I said no", "green"),
    ("I think about suicide every day", "red"),
    # indirect risk
    ("Everybody would carry on without me. Might even be easier.", "red"),
    ("I've stopped my heart tablets. If my heart gives up, so be it.", "red"),
    ("Thinking of stopping my metformin, going to ask the GP about the slow release version first", "green"),
    ("Stockpiling my insulin pens because the pharmacy keeps running out", "green"),
    ("Everything's sorted, the dog is at my sister's. I won't be needing him after tonight.", "crisis"),
    # without an essential medicine; nobody would notice; cuts getting deeper; the only one who tried
    ("Ran out of my lithium on Friday and the chemist can't get more till Tuesday", "red"),
    ("Ran out of milk so had my porridge with water", "green"),
    ("no one would even care if i disappeared tbh", "red"),
    # (amber from its low-mood words; not red, the wish needs the sentence to end at "vanished")
    ("Nobody would notice if I vanished from this chat for a week, it's that busy", "amber"),
    ("the cuts on my arm are deeper than last time", "red"),
    ("you were the only one who ever listened. thank you", "red"),
])
def test_ordinary_contexts_set_aside_and_indirect_risk_counts(lexicon, text, level):
    assert lexicon.triage(text).level == level


@pytest.mark.parametrize("text, level", [
    # the I inside someone else's quoted words is theirs; an apostrophe in "he's" is not a quote
    ("my sister says 'I want to die' every time she opens the gas bill", "green"),
    ("my neighbour told me today he's been saving his water tablets 'for when it's time'", "crisis"),
    # ", now ..." ends the clause of a past event; a question about what happens is not an act
    ("I used to purge after every meal, now I'm training to be a nurse", "green"),
    ("what happens if you miss a dialysis session because of snow?", "green"),
    ("skipped dialysis twice this week on purpose", "red"),
    # contractions typed without an apostrophe; "wouldn't care if" is not a negation of the wish
    ("it'd be simpler for everyone if I just wasnt here", "red"),
    ("I wouldnt care if I didnt wake up tomorrow", "red"),
    ("goodbye lie-ins, hello 6am feeds, it was nice knowing you", "green"),
    ("I know which bridge now, and when the trains go through", "crisis"),
    ("tell my son his dad loved him", "crisis"),
    ("climbed over the railing, I'm on the wrong side of it now", "crisis"),
    ("been driving past the viaduct every night just to look at it", "red"),
    ("I'd rather have died in that crash", "red"),
    ("my chest gets tight walking up the stairs and eases off when I sit down", "red"),
    ("still smoking next to the oxygen concentrator, I know I know", "red"),
    ("the whites of her eyes have gone yellow and she's itchy", "red"),
    ("my stoma hasn't put anything out since yesterday and I'm being sick", "red"),
    ("took my warfarin twice today by mistake", "red"),
    ("my partner has been drinking every night while she's got the baby", "red"),
    # "not me ..." says the writer is doing it; lines quoted from the post replied to are not the writer's
    ("not me hoping the train hits me on the way to my exam 🙃", "red"),
    ("> kms i have an exam tomorrow\n\nyou'll smash it, good luck!", "green"),
    ("my little sister said she 'wanted to die' when her ice cream fell, she's 5", "green"),
    ("gun to my head I couldn't name a single bone in the hand", "green"),
    ("for my essay: why are suicide rates higher in rural areas?", "green"),
    ("left my 5yo brother home alone all night again", "red"),
    ("a man online keeps asking my 12yo niece for pics and to keep it secret", "red"),
    ("drinking on top of my methadone again last night", "red"),
    ("threw the narcan in the bin so nobody can bring me back", "crisis"),
    ("day 3 off the booze, seeing spiders that aren't there and I think I had a fit", "crisis"),
    ("positive test on monday and now sharp pain on one side and I feel faint", "crisis"),
    ("I'll be joining my wife tomorrow, it's the anniversary", "crisis"),
])
def test_quotes_clauses_contractions_replies_and_more_red_flags(lexicon, text, level):
    assert lexicon.triage(text).level == level


@pytest.mark.parametrize("text, level", [
    # a number inside a bigger one is not a small intake; "send it" is not "end it"; forceps are not force
    ("the dietitian put me up from 2,200 to 2,600 calories a day", "green"),
    ("only managing 600 calories a day and I'm dizzy", "red"),
    ("can you send it to my other email please", "green"),
    ("the midwife said they used forceps in the end", "green"),
    ("my grandson says 'goodbye forever' to the bath water every night", "green"),
    ("my daughter throws her peas at the dog at every meal", "green"),
    ("he throws things at me when he's been drinking", "red"),
    ("overdosed on mince pies again, no regrets", "green"),
    ("in my worst years I took diet pills daily", "green"),
    ("used to burn myself as a teen, 20 years free of that now", "green"),
    # a ligature in place, a goodbye passed on through others, alone with the means, a named partner's weapon
    ("tied my dressing gown cord round the banister and I'm sat on the stairs", "crisis"),
    ("please tell my kids I'm sorry", "crisis"),
    ("this will be the last message you'll get from me", "crisis"),
    ("parked up by the reservoir with all my tablets, can't go on", "crisis"),
    ("sitting in the kitchen with my tablets sorting the dosette box", "green"),
    ("my boyfriend's got a bat and he's banging on the door threatening me", "crisis"),
])
def test_numbers_words_inside_words_children_and_means_at_hand(lexicon, text, level):
    assert lexicon.triage(text).level == level


@pytest.mark.parametrize("text, level", [
    # "suicide" alone is a topic (a statistic, a loss, a training day), not a thought of one's own
    ("the training on suicide prevention at work was really good", "green"),
    ("we lost my uncle to suicide in 2019 and the walk today was for him", "green"),
    ("suicide seems like the only way out of this debt", "red"),
    # texting spellings, facts about the body, a plan made with the doctor, the edge of the bed
    ("i jst wnt to disapear forever", "red"),
    ("what actually happens to your body when your sugar drops?", "green"),
    ("coach, I want to come off my sertraline in spring, I'll do it with my GP", "green"),
    ("I sit on the edge of the bed before standing so I don't get dizzy", "green"),
    ("any tips so I don't wake up low after a night out?", "green"),
    # told by a professional or the news; a past year told as over; a nearby threat
    ("the nurse told us that chest pain with a numb arm means calling 999 at once", "green"),
    ("I was suicidal for months after the divorce. That was 2016, and I'm glad I stayed.", "green"),
    ("my ex knows where I live now and he's been sat outside the flat tonight", "red"),
    ("my mother-in-law slapped me again today", "red"),
    # no point in living, stepping out in front of traffic, swimming out
    ("honestly what's the point of carrying on", "red"),
    ("waiting at the crossing I thought about stepping out in front of the lorry", "red"),
    ("going to swim out as far as I can tonight", "crisis"),
    # clinical: breathing, bleeding, potassium, a silent fistula, fever after a transplant, meds and drink
    ("can't get a full sentence out and my lips look blue", "crisis"),
    ("my oxygen was 84% on the finger probe this morning", "red"),
    ("my oxygen is 87% but that's normal for me, the team knows", "green"),
    ("blood is pouring from my fistula and soaking through the towel", "crisis"),
    ("potassium came back at 6.8 and they want me in", "red"),
    ("potassium was 4.6, all good", "green"),
    ("can't feel the buzz in my fistula since this morning", "red"),
    ("temperature of 38.5 two months after my kidney transplant", "red"),
    ("binned all my tablets on Friday, I'm done with them", "red"),
    ("having wine on top of my diazepam most nights now", "red"),
    ("haven't slept in 5 nights, spent my savings, the ideas are so clear now", "red"),
    ("I'm scared to be left alone with the baby", "red"),
    ("used for the first time since I got out of prison", "red"),
    ("I've swallowed every one of my amitriptyline, the whole box", "crisis"),
    ("drove home from the party still over the limit", "red"),
])
def test_topics_spellings_tellers_and_more_clinical_red_flags(lexicon, text, level):
    assert lexicon.triage(text).level == level


@pytest.mark.parametrize("text, level", [
    # ordinary: two pills, a self-injection, a card handed over, a neurologist asking, a past decade, a game
    ("took all my tablets with breakfast, all three of them, living the dream", "green"),
    ("jab day: stabbed myself in the tummy with the pen, no drama", "green"),
    ("best thing I did was give my wife control of the bank card for a while", "green"),
    ("my psychiatrist asked about thoughts of ending it, a standard question apparently", "green"),
    ("my gran said she wanted to die some winters. That was the 70s, she's 90 now and sharp as a tack", "green"),
    ("she said 'let's just end it all', she meant the board game, four hours in", "green"),
    ("cut myself shaving again, tiny nick", "green"),
    ("I could strangle him, lovingly, he ate my leftovers", "green"),
    ("gonna throw myself off the sofa if the kids ask for one more snack", "green"),
    ("he had 4 seizures today, within his normal, plan followed", "green"),
    # risk: without me, hoping to be ended, game slang, a method asked for oneself, a jump from where they are
    ("my husband keeps saying we'd be fine without him", "red"),
    ("kind of hoping the lorry clips me on the way home and that's that", "red"),
    ("lost the lot again, time to uninstall myself", "red"),
    ("can you overdose on iron tablets? asking for me", "red"),
    ("if this bet loses I'm jumping off the multi-storey, I'm on the top level now", "crisis"),
    ("I won't be at group next week, or any other day.", "crisis"),
    ("sometimes I think about throwing myself down the stairs", "red"),
    ("threw a plate at him and I'm scared next time I won't miss", "red"),
    # clinical and safeguarding
    ("my dad is trapped under the tractor and not answering", "crisis"),
    ("took morphine from the drug box after my shift and used it", "crisis"),
    ("swallowed my whole month's supply of sertraline", "crisis"),
    ("she's had 5 seizures today and mum won't call anyone", "red"),
    ("haven't had my lamotrigine for 3 days, pharmacy ran out", "red"),
    ("my aura has been going for more than a day now", "red"),
    ("blood pressure 176/108 and a pounding headache", "red"),
    ("some bleeding today, ten years after my last period", "red"),
    ("the condom split with a guy who isn't on meds, is it too late for PEP?", "red"),
    ("breathless walking to the toilet since yesterday", "red"),
    ("the boss keeps our passports and says we owe him", "red"),
    ("having a drink before my shifts now to steady my hands", "red"),
    ("since the pramipexole went up I've been gambling every night", "red"),
    ("not sleeping, not eating, last time it got like this I ended up in hospital", "red"),
])
def test_without_me_methods_asked_for_oneself_and_round_five_red_flags(lexicon, text, level):
    assert lexicon.triage(text).level == level


@pytest.mark.parametrize("text, level", [
    # ordinary: a past winter, a bare "doc told me", questions about thresholds, idioms of work and noise
    ("three winters ago I had pills saved up in a drawer. Talked to my nurse instead, still here", "green"),
    ("Nurse told us about a man who took his whole box of pills, she wanted us to know the signs", "green"),
    ("what counts as a high temperature after a transplant, 38 or 37.5?", "green"),
    ("at what point should I go to A&E with a migraine that won't shift?", "green"),
    ("up at 5, 7am start on the roof in the rain, then the school run. Living the dream", "green"),
    ("I'll throw myself off the pier if I hear one more ice-cream van jingle", "green"),
    ("woke up like I'd been hit by a truck after that first spin class", "green"),
    ("bloody sick of the rain, the dog won't even go out", "green"),
    ("our Kev hasn't posted since Monday, he's on his stag do in Benidorm", "green"),
    ("took a double dose of my inhaler like the asthma nurse told me to", "green"),
    ("my 3 year old gave the cat my leftover pizza", "green"),
    # risk
    ("Gary from Thursday group hasn't answered for three days and his phone's off, anyone heard?", "red"),
    ("dad with dementia wandered off again at night, police are looking for him now", "red"),
    ("I keep looking at the gun safe in the garage, more than I should", "red"),
    ("I'm sat on the level crossing in the car", "crisis"),
    ("Leave my guitar to my nephew Sam. Thanks for everything lads. I'm done.", "crisis"),
    ("saved up enough and they're in the glovebox, I'll swallow them at the beach later", "crisis"),
    ("every night I pray for God to take me in my sleep", "red"),
    ("if there was a button to switch myself off I'd press it", "red"),
    ("if it wasn't for my dog I don't think I'd still be here", "red"),
    ("honestly I'd rather not be alive anymore", "red"),
    ("I pushed Mum against the wall when she wandered at 3am and I'm frightened it will happen again", "red"),
    ("he shakes the baby when she won't settle", "red"),
    ("I can hear the woman upstairs screaming for help, he's hitting her", "crisis"),
    ("he locks my insulin in his car until I hand over my wages", "red"),
    ("the carer has been taking Nan's pension, we found the receipts", "red"),
    ("I've been taking my oxycodone at double the dose since Tuesday", "red"),
    ("took methotrexate daily this week instead of weekly, my mouth is full of ulcers", "red"),
    ("came off my venlafaxine cold turkey on Friday, the brain zaps are awful", "red"),
    ("five days after my c-section, temperature 38.7 and a smelly discharge", "red"),
    ("31 weeks and my waters have just gone", "crisis"),
    ("my husband keeps nodding off mid-sentence since the new patches", "red"),
    ("chest felt heavy the whole run but I pushed through to the end", "red"),
    ("living on black coffee for a week and I keep fainting at work", "red"),
    ("found my 2 year old with the e-liquid bottle, it's open and he was sucking the top", "red"),
    ("the chemist wouldn't give me diazepam so I bought some off a guy on Telegram", "red"),
    ("had rituximab on Tuesday, temp 38.4 tonight and shivering", "red"),
    ("mi pray every night fi di Lord tek mi", "red"),
])
def test_round_six_people_missing_farewells_coercion_and_medicines(lexicon, text, level):
    assert lexicon.triage(text).level == level


@pytest.mark.parametrize("text, level", [
    # diary scores, questions about a topic, figures of speech, a vape said goodbye to
    ("DBT card today: urge to self-harm 0/5, urge to drink 1/5, skills used: opposite action", "green"),
    ("does anyone know whether a teacher has to report self-harm to the parents?", "green"),
    ("ran for the bus, my body says I got hit by a bus instead", "green"),
    ("my nephew's jokes, I could die laughing", "green"),
    ("'Lord take me now' when the printer jams, as my mother says, only an expression", "green"),
    ("said goodbye to my last vape pod tonight, binned it for good", "green"),
    ("past me would have cut over this, present me went for a run", "green"),
    # still risk: a high urge score, a question that is about oneself now
    ("urge to self-harm 5/5 tonight and the blade is in my bag", "red"),
    ("does anyone know how many of my sleeping tablets it would take? asking for me", "red"),
])
def test_diary_scores_topic_questions_and_figures_of_speech(lexicon, text, level):
    assert lexicon.triage(text).level == level


@pytest.mark.parametrize("text, level", [
    # someone missing, told by the one who worries
    ("Uncle Ray, 80, missing since this morning. He has dementia and no phone. Police know.", "red"),
    ("my sister hasn't come home since Sunday and her phone is off, not like her", "red"),
    # another person's overdose or weapon, relayed
    ("my cousin just rang saying she's taken everything in the bathroom cabinet", "crisis"),
    ("he sent me a photo of his rifle and then stopped answering", "crisis"),
    # death as rest, a shortened life hoped for, a close one speaking of dying today
    ("I keep dreaming about being dead and it feels so peaceful", "red"),
    ("I'd rather fall and not get up, honestly", "red"),
    ("my wife said this morning that we'd be better off without her, what do I do", "red"),
    # self-harm by heat, binges with no one to check
    ("pressed my palm against the iron after the argument", "red"),
    ("got a bag of G in, nobody to check on me this weekend", "red"),
    # medicines and bodies
    ("the insulin costs too much so I halve my doses to make it last", "red"),
    ("still driving to work even though the DVLA took my licence after the fits", "red"),
    ("sore on my big toe has gone black and it smells", "red"),
    ("erection for six hours now and it hurts, sickle cell", "crisis"),
    ("sudden tearing pain between my shoulder blades into my chest, I feel faint", "crisis"),
    ("my flatmate won't wake up and her breathing is really slow, she had G earlier", "crisis"),
    # figures of speech and the past set aside
    ("the 111 hold music makes me want to jump out of a window", "green"),
    ("kms this essay is due at nine", "green"),
    ("Grandad beat us all at dominoes again", "green"),
    ("CPAP mask marks on my face all morning", "green"),
    ("caught hep C in the 90s sharing works, clean for years now", "green"),
])
def test_round_seven_people_missing_relayed_danger_and_bodies(lexicon, text, level):
    assert lexicon.triage(text).level == level


@pytest.mark.parametrize("text, level", [
    # denials, questions, the past at diagnosis, another member's story, figures of speech
    ("Zero thoughts of ending it, just tired of this flat", "green"),
    ("never thought about ending it, and I know how lucky I am", "green"),
    ("what actually happens if you miss a dose of levodopa?", "green"),
    ("how long should you wait before ringing 999 when someone has a seizure?", "green"),
    ("when I was first diagnosed I stopped my tablets for a week and ended up in hospital", "green"),
    ("a member here posted that she'd been planning to end things, and this group got her through", "green"),
    ("the hold music makes me want to die", "green"),
    ("I nearly died laughing at the quiz", "green"),
    ("his puns are criminal, he should be locked up for them", "green"),
    # still risk: a plan known; what is in one's head is no figure of speech
    ("I know how I'd do it and I've got the tablets", "crisis"),
    ("the noise in my head makes me want to die", "red"),
])
def test_round_eight_denials_questions_and_figures_of_speech(lexicon, text, level):
    assert lexicon.triage(text).level == level


def test_spellings_are_data_and_checked(tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text("spellings:\n  ded: dead\n  wanna2: want to\n")
    assert load([extra]).spellings["wanna2"] == "want to"
    bad = tmp_path / "bad.yaml"
    bad.write_text("spellings:\n  'w/o': without\n")
    with pytest.raises(LexiconError, match="spelling 'w/o'"):
        load([bad])


def test_an_ordinary_context_is_named_in_the_reason(lexicon):
    aside = lexicon.triage("Goodbye everyone! Finished the 12 weeks today, off to the maintenance group").reasons[0]
    assert aside.set_aside == "ordinary" and "an ordinary context" in aside.describe()
    joke = lexicon.triage("kms lol jk").reasons[0]
    assert joke.set_aside == "joke" and "flagged as a joke" in joke.describe()


# the labelled sets the rules were developed on; newer sets were measured unseen (README, Risk triage)
DEVELOPMENT_SETS = ("triage_eval", *(f"triage_holdout{n}" for n in ("", *range(2, 46), *range(48, 53), 54, 55)),
                    "triage_ordinary")


def test_every_development_set_keeps_green_writing_below_red(lexicon):
    """Rules alone: on every set the rules were developed on, at most 2% of green sentences are raised
    to red or crisis."""
    for name in DEVELOPMENT_SETS:
        path = DATA / f"{name}.yaml"
        greens = [case for case in YAML(typ="safe").load(path.read_text()) if case["level"] == "green"]
        raised = [case["text"] for case in greens if lexicon.triage(case["text"]).level in ("red", "crisis")]
        assert greens and len(raised) / len(greens) <= 0.02, (path.name, raised)


def test_reasons_name_the_rule_and_the_phrase_and_what_set_a_match_aside(lexicon):
    counted = lexicon.triage("I want to die").reasons[0]
    assert counted.rule == "suicidal_thoughts" and counted.phrase == "want to die" and counted.set_aside is None
    aside = lexicon.triage("I would never want to die like that").reasons[0]
    assert aside.set_aside == "negation" and "negated" in aside.describe()


def test_the_development_set_meets_the_targets(lexicon):
    cases = YAML(typ="safe").load((DATA / "triage_eval.yaml").read_text())
    result = evaluate(cases, lexicon)
    assert len(cases) >= 300
    assert result.raised_recall >= 0.95
    assert result.false_alarm_ordinary <= 0.05


def test_an_installation_extends_the_lexicon(tmp_path):
    extra = tmp_path / "local.yaml"
    extra.write_text('rules:\n  - id: local_word\n    level: red\n    reason: a local phrase\n'
                     '    patterns: ["\\\\bwalking into the loch\\\\b"]\n')
    assert load([extra]).triage("thinking of walking into the loch").level == "red"
    bad = tmp_path / "bad.yaml"
    bad.write_text('rules:\n  - id: broken\n    level: purple\n    reason: x\n    patterns: ["(unclosed"]\n')
    with pytest.raises(LexiconError, match=r"bad.yaml: rules.0.level"):
        load([bad])
    worse = tmp_path / "worse.yaml"
    worse.write_text('rules:\n  - id: broken\n    level: red\n    reason: xyz\n    patterns: ["(unclosed", "%nope%"]\n')
    with pytest.raises(LexiconError) as caught:
        load([worse])
    assert "not a valid regular expression" in str(caught.value) and "unknown definition %nope%" in str(caught.value)


def test_cli_triage_prints_one_json_object():
    result = runner.invoke(app, ["safety", "triage", "I could kill for a cigarette"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"level": "green", "reasons": [], "emergency": False}
    crisis = json.loads(runner.invoke(app, ["safety", "triage", "bought a rope, doing it tonight"]).stdout)
    assert crisis["level"] == "crisis" and crisis["reasons"]


def test_cli_evaluate_prints_figures_and_refuses_bad_files(tmp_path):
    result = runner.invoke(app, ["safety", "evaluate", str(DATA / "triage_eval.yaml"), "--json"])
    assert result.exit_code == 0
    figures = json.loads(result.stdout)
    assert set(figures["per_level"]) == {"green", "amber", "red", "crisis"}
    assert sum(sum(row.values()) for row in figures["confusion"].values()) == figures["total"]
    table = runner.invoke(app, ["safety", "evaluate", str(DATA / "triage_eval.yaml")])
    assert "Confusion matrix" in table.stdout and "red+crisis recall" in table.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("- text: hello\n  level: blue\n")
    failed = runner.invoke(app, ["safety", "evaluate", str(bad)])
    assert failed.exit_code == 1 and "case 1" in failed.stderr


def test_pii_detectors_and_scrubbing():
    text = "Ring 07911 123456, write to sam.jones@example.com, I'm at 14 Mill Lane. My name is Jane Smith."
    assert [f.kind for f in pii.find(text, "GB")] == ["phone", "email", "address", "name"]
    assert pii.scrub(text, "GB") == "Ring [phone], write to [email], I'm at [address]. My name is [name]."
    assert pii.find("walked 12,500 steps, 1200 kcal, weight 85.4 kg on 12/03/2025", "GB") == []


def test_the_fast_path_and_the_full_path_agree(lexicon):
    """The RE2 pass only chooses which rules to try: with or without it, every labelled sentence gets
    the same level and reasons."""
    import dataclasses

    assert lexicon.rule_set is not None
    slow = dataclasses.replace(lexicon, rule_set=None)
    texts = [c["text"] for name in ("triage_eval", "triage_holdout", "triage_holdout2")
             for c in YAML(typ="safe").load((DATA / f"{name}.yaml").read_text())]
    texts += ["naïve café talk: I want to die", "tonight I'm going to end it \u2009bye"]
    for text in texts:
        assert lexicon.triage(text) == slow.triage(text), text


def test_the_learned_model_scores_as_scikit_learn_does():
    """model.json is scored by plain Python; it must give scikit-learn's blended probabilities."""
    from peerlift.safety.model import LinearModel, _Blend, _export

    cases = YAML(typ="safe").load((DATA / "triage_eval.yaml").read_text())[::2]
    texts = [c["text"] for c in cases]
    fitted = _Blend(10.0).fit(texts, [c["level"] in ("red", "crisis") for c in cases])
    model = LinearModel(_export(fitted, 0.5, {}))
    assert 0 < model.blend < 1
    probe = texts + ["naïve   café 😂 I want to DIE", ""]
    for text, expected in zip(probe, fitted.predict_proba(probe)[:, 1]):
        assert abs(model.opinion(text).probability - expected) < 1e-5, text


def test_the_learned_model_raises_what_no_rule_names_and_can_be_switched_off(monkeypatch):
    from peerlift.safety import triage as triage_module
    from peerlift.settings import get_settings

    with_model = triage_module.load(model=triage_module.model_path(""))
    rules_only = triage_module.load()
    cases = YAML(typ="safe").load((DATA / "triage_holdout3.yaml").read_text())
    missed = [c["text"] for c in cases if c["level"] in ("red", "crisis")
              and rules_only.triage(c["text"]).level in ("green", "amber")]
    assert missed, "the rules alone miss some risk writing"
    raised = [with_model.triage(text) for text in missed]
    assert sum(r.level == "red" for r in raised) >= len(missed) * 0.8
    why = next(r for r in raised if r.level == "red").reasons[-1]
    assert why.rule == "learned_model" and why.phrase.startswith("score ")
    monkeypatch.setenv("PEERLIFT_TRIAGE_MODEL", "off")
    get_settings.cache_clear()
    assert triage_module.default_lexicon().model is None
    monkeypatch.setenv("PEERLIFT_TRIAGE_MODEL", "/nonexistent/model.json")
    get_settings.cache_clear()
    with pytest.raises(LexiconError, match="not a triage model"):
        triage_module.default_lexicon()
    get_settings.cache_clear()


def test_cli_train_writes_a_model_with_cross_validated_figures(tmp_path):
    cases = YAML(typ="safe").load((DATA / "triage_eval.yaml").read_text())
    small = tmp_path / "cases.yaml"
    YAML().dump(cases[::4], small.open("w"))
    out = tmp_path / "model.json"
    result = runner.invoke(app, ["safety", "train", str(small), "--out", str(out)])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["cases"] == len(cases[::4]) and 0.3 <= figures["threshold"] <= 0.95
    assert load(model=out).model.threshold == figures["threshold"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("- text: hi\n  level: purple\n")
    refused = runner.invoke(app, ["safety", "train", str(bad), "--out", str(tmp_path / "x.json")])
    assert refused.exit_code == 1 and "case 1" in refused.stderr and not (tmp_path / "x.json").exists()


def test_training_leaves_one_file_out_and_holds_the_model_to_its_share_of_false_alarms():
    """With three or more files the threshold is chosen on scores of files the model was not fitted
    on; the model adds no more than the limit of each file's green cases on average, and a file whose
    harmless sentences the rules already raise does not pin the threshold at the top."""
    from peerlift.safety.model import LinearModel, train

    cases = YAML(typ="safe").load((DATA / "triage_eval.yaml").read_text())
    loud = [{"text": f"saying goodbye to everyone tonight, note {n}", "level": "green"} for n in range(25)]
    rules = {case["text"]: "crisis" for case in loud}
    folds_done = []
    groups = ["eval-a" if i % 2 else "eval-b" for i in range(len(cases))] + ["loud"] * len(loud)
    data, figures = train(cases + loud, rules_level=lambda text: rules.get(text, "green"), groups=groups,
                          max_added_false_alarm=0.02, progress=lambda: folds_done.append(1))
    assert figures["held_out"] == "one group" and figures["folds"] == 3 and len(folds_done) == 3
    assert figures["threshold"] < 0.95 and figures["cv_green_raised_by_model_per_group"] <= 0.02
    assert figures["cv_green_raised_with_rules"] >= 25 / (25 + sum(c["level"] == "green" for c in cases))
    model = LinearModel(data)
    greens = [c["text"] for c in cases if c["level"] == "green"]
    raised = sum(model.opinion(text).probability >= model.threshold for text in greens)
    assert raised / len(greens) <= 0.02 + 0.02  # fitted on them: at most the cross-validated share, with slack
    # a looser limit lowers the threshold (more recall), a file with no risk case outside it is refused
    looser, _ = train(cases + loud, rules_level=lambda text: rules.get(text, "green"), groups=groups,
                      max_added_false_alarm=0.10)
    assert looser["threshold"] < data["threshold"]
    only_risk = [c for c in cases if c["level"] in ("red", "crisis")]
    with pytest.raises(ValueError, match="outside every file"):
        train(only_risk + loud[:5] + loud[5:10] + loud[10:],
              rules_level=lambda text: "green",
              groups=["risk"] * len(only_risk) + ["a"] * 5 + ["b"] * 5 + ["c"] * 15)


def test_clinical_red_flags_raise_what_they_name_and_leave_look_alikes_alone(lexicon):
    """lexicon_clinical.yaml's own examples: every risk sentence reaches at least its level (a shipped
    rule may raise it higher), no harmless one is raised to red or crisis."""
    cases = YAML(typ="safe").load((DATA / "triage_clinical_rules.yaml").read_text())
    wrong = []
    for case in cases:
        got = lexicon.triage(case["text"]).level
        if case["level"] in ("red", "crisis"):
            if RANK[got] < RANK[case["level"]]:
                wrong.append((case["text"], case["level"], got))
        elif got in ("red", "crisis"):
            wrong.append((case["text"], case["level"], got))
    assert len(cases) > 400 and wrong == []
