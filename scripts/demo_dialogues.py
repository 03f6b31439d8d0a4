"""Written dialogues (the ground truth text) of the qa-pipeline demo corpus.

Read by scripts/make_demo_corpus.py, which turns each call into audio, a manifest row and a truth JSON.
Everything here is fiction written for this project (MIT, like the rest of the repository): the companies
"Brightwave Energy" and "Skyline Broadband", the agents, the customers, account numbers and prices.

A turn is ``(speaker, text)`` or ``(speaker, text, options)``; speaker ``"a"`` = agent, ``"c"`` = customer.
Options (all in seconds):
    gap      silence before this turn starts, measured from the end of the previous turn (default: random
             0.3-1.2 s, seeded per call); a long gap is dead air
    overlap  this turn starts this long BEFORE the previous turn ends (overtalk / interruption)
    hold     after this turn, that many seconds of hold music on the agent side, then the next turn

Labels are the facts planted in the text, for evaluating the QA stages (see demo/README.md for definitions).
The generator adds the measured ones: hold_s, dead_air_s, overtalk_s, duration_s.
"""

from __future__ import annotations

# --- agents -----------------------------------------------------------------------------------------------
# English agents use the piper "joe" neural voice, made into four speakers with sox pitch/tempo and piper's
# length scale. Giulia's Italian calls use espeak-ng's Italian voice (no Italian neural voice ships offline).
AGENTS = {
    "A01": {"name": "Laura", "team": "north",
            "voice": {"engine": "piper", "length_scale": 0.95, "pitch": 380, "tempo": 1.0}},
    "A02": {"name": "Daniel", "team": "north",
            "voice": {"engine": "piper", "length_scale": 1.0, "pitch": 0, "tempo": 1.0}},
    "A03": {"name": "Giulia", "team": "south",
            "voice": {"engine": "piper", "length_scale": 0.9, "pitch": 220, "tempo": 1.0},
            "voice_it": {"engine": "espeak", "voice": "it+f3", "speed": 150, "pitch": 72}},
    "A04": {"name": "Mark", "team": "south",
            "voice": {"engine": "piper", "length_scale": 1.08, "pitch": -280, "tempo": 1.0}},
}

COMPANIES = {
    "energy-inbound": "Brightwave Energy",
    "survey-q4": "Brightwave Energy",
    "broadband-sales": "Skyline Broadband",
    "broadband-support": "Skyline Broadband",
}


def _c(voice: str, speed: int, pitch: int, level: float = -21.0) -> dict:
    """An espeak-ng customer voice; level = RMS of the speech in dBFS."""
    return {"engine": "espeak", "voice": voice, "speed": speed, "pitch": pitch, "level": level}


# Defaults of every call; a call overrides what differs.
DEFAULTS = {
    "direction": "inbound",
    "language": "en",
    "channels": 2,
    "agent_channel": "left",
    "format": "opus",
}

DEFAULT_LABELS = {
    "opening_compliant": True,
    "missing": [],
    "closing_compliant": True,
    "closing_missing": [],
    "events": [],
    "customer_sentiment": "neutral",
    "customer_sentiment_end": "neutral",
    "angry_customer": False,
    "rude_agent_phrase": False,
    "agent_overtalk": False,
    "customer_overtalk": False,
    "price_given": False,
}

CALLS = [
    # ------------------------------------------------------------------------------------------------------
    {
        "stem": "demo-001", "agent_id": "A01", "campaign": "energy-inbound", "call_type": "information",
        "started_at": "2026-11-16T09:12:00+01:00",
        "customer": _c("en-gb+f3", 150, 60),
        "turns": [
            ("a", "Good morning, thank you for calling Brightwave Energy, my name is Laura, how can I help you?"),
            ("c", "Hi Laura. I'm thinking of switching my electricity to you, and I wanted to ask about your "
                  "tariffs."),
            ("a", "Of course, I'd be happy to help. Could I take your postcode, so I can check the prices in your "
                  "area?"),
            ("c", "Yes, it's M14 5RT."),
            ("a", "Thank you. For your area we have two tariffs. The Flex tariff is twenty-four point five pence "
                  "per kilowatt hour, with a standing charge of fifty-one pence a day. The Fix Twelve tariff is "
                  "fixed for twelve months at twenty-two pence per kilowatt hour, with the same standing charge."),
            ("c", "And is there an exit fee on the fixed one?"),
            ("a", "Yes, there is an exit fee of thirty pounds per fuel if you leave before the twelve months are "
                  "over. The Flex tariff has no exit fees at all."),
            ("c", "Okay. And how long does the switch take?"),
            ("a", "The switch usually takes about three weeks. Your supply is never interrupted, and we take the "
                  "meter reading on the day of the switch."),
            ("c", "That sounds good. I'll talk it over with my partner and call you back."),
            ("a", "Of course. Just to recap, Fix Twelve is twenty-two pence per kilowatt hour, fixed for a year, "
                  "Flex is twenty-four point five pence with no exit fees, and the switch takes about three "
                  "weeks. You can call us back on this number any time. Thank you for calling Brightwave Energy, "
                  "and have a lovely day. Goodbye."),
            ("c", "Thanks, bye."),
        ],
        "labels": {"events": ["information_given"], "customer_sentiment": "positive",
                   "customer_sentiment_end": "positive", "price_given": True},
    },
    # ------------------------------------------------------------------------------------------------------
    {
        "stem": "demo-002", "agent_id": "A02", "campaign": "energy-inbound", "call_type": "order",
        "started_at": "2026-11-16T10:40:00+01:00",
        "customer": _c("en-us+m3", 150, 45),
        "turns": [
            ("a", "Good morning, you're through to Brightwave Energy, my name is Daniel. How can I help you today?"),
            ("c", "Morning. I'd like to order one of your smart thermostats. I saw the offer on your website."),
            ("a", "Great choice. Can I take your customer number, please?"),
            ("c", "Sure, it's four four seven, two one nine, eight."),
            ("a", "Thank you. I can see your account, Mr Harris. The Brightwave smart thermostat is eighty-nine "
                  "pounds, and as an existing customer you can add professional installation for thirty-five "
                  "pounds. Would you like installation as well?"),
            ("c", "No, I'll fit it myself. How much is delivery?"),
            ("a", "Delivery is free, and it arrives within three to five working days by courier. Would you like "
                  "to pay by card, or add it to your next bill?"),
            ("c", "Put it on my next bill, please."),
            ("a", "Certainly. Shall we deliver to the address on your account, twelve Elm Road?"),
            ("c", "Yes, that's the one."),
            ("a", "Perfect. So, to recap your order: one Brightwave smart thermostat at eighty-nine pounds, no "
                  "installation, free delivery to twelve Elm Road within three to five working days, and it will "
                  "be added to your next bill. You'll get a confirmation email within the hour. Is there anything "
                  "else I can help you with?"),
            ("c", "No, that's everything, thanks."),
            ("a", "Thank you for your order, Mr Harris. Have a great day, goodbye."),
        ],
        "labels": {"events": ["order_taken", "information_given"], "customer_sentiment": "positive",
                   "customer_sentiment_end": "positive", "price_given": True},
    },
    # ------------------------------------------------------------------------------------------------------
    {
        "stem": "demo-003", "agent_id": "A03", "campaign": "energy-inbound", "call_type": "complaint",
        "started_at": "2026-11-16T14:05:00+01:00",
        "customer": _c("en-gb+m3", 165, 45, level=-16.0),
        "turns": [
            ("a", "Good afternoon, thank you for calling Brightwave Energy, my name is Giulia, how can I help you?"),
            ("c", "Yes, hello. I am absolutely furious. This is the third time I'm calling about the same bill, "
                  "and nobody has done anything!"),
            ("a", "I'm very sorry to hear that. Could you tell me exactly what the problem with the bill is, so I "
                  "can look into it?"),
            ("c", "You've charged me four hundred and twelve pounds for October. Four hundred pounds! I live "
                  "alone in a one bedroom flat. Last month it was sixty."),
            ("a", "I understand, that is a big difference. Could I have your account number, please?"),
            ("c", "It's B W three three nine one zero two."),
            ("a", "Thank you. I can see that the October bill was based on an estimated reading, not on an actual "
                  "meter reading, and the estimate was much higher than your usual use."),
            ("c", "An estimate? I sent you a reading! I sent you a photo of the meter and you ignored it. This is "
                  "ridiculous, it's completely unacceptable!", {"overlap": 1.6}),
            ("a", "You're right, and I apologise on behalf of Brightwave Energy. The reading you sent should have "
                  "been used, and it wasn't. I'm very sorry for the stress this has caused you."),
            ("c", "Sorry doesn't pay my bill. I want this fixed today, and I want someone to take this seriously."),
            ("a", "I understand. So that this is handled properly, I'm going to transfer you to our quality "
                  "control team. They deal with billing complaints, and they can cancel the estimated bill and "
                  "reissue it with your real reading. I'll pass them all the details, so you won't have to "
                  "explain it again."),
            ("c", "Fine. But if this happens again, I'm leaving."),
            ("a", "That's completely understandable. To recap, I've logged your complaint about the estimated "
                  "October bill, reference C K two two four eight, and I'm transferring you now to quality "
                  "control, who will reissue the bill. Thank you for your patience, and goodbye."),
            ("c", "Okay."),
        ],
        "labels": {"events": ["complaint", "apology", "transfer_to_quality"], "customer_sentiment": "negative",
                   "customer_sentiment_end": "negative", "angry_customer": True, "customer_overtalk": True},
    },
    # ------------------------------------------------------------------------------------------------------
    {
        "stem": "demo-004", "agent_id": "A04", "campaign": "energy-inbound", "call_type": "complaint",
        "started_at": "2026-11-17T11:20:00+01:00", "agent_channel": "right",
        "customer": _c("en-us", 155, 62),
        "turns": [
            ("a", "Yeah, hello?"),
            ("c", "Hello, is this Brightwave Energy? I'm calling to complain about my direct debit."),
            ("a", "Yeah. What's the problem?"),
            ("c", "You took my direct debit twice this month. Two payments of ninety-five pounds, on the first and "
                  "on the third. Now my bank account is overdrawn."),
            ("a", "Account number?"),
            ("c", "It's B W five five zero eight one seven."),
            ("a", "Okay, I see two payments. The second one was a system thing. It'll be refunded in five to ten "
                  "working days."),
            ("c", "Five to ten days? I'm overdrawn now, and my bank is charging me fees. Can't you do it any "
                  "faster?"),
            ("a", "No. That's not my problem, the refunds team does that, not me."),
            ("c", "Well, can I at least get the bank charges back? This was your mistake, not mine."),
            ("a", "You can write in if you want. Anything else?"),
            ("c", "I suppose not. This is really poor service."),
            ("a", "Okay. Bye."),
        ],
        "labels": {"opening_compliant": False, "missing": ["agent_name", "company_name"],
                   "closing_compliant": False, "closing_missing": ["recap", "thanks"],
                   "events": ["complaint"], "customer_sentiment": "negative", "customer_sentiment_end": "negative",
                   "rude_agent_phrase": True},
    },
    # ------------------------------------------------------------------------------------------------------
    {
        "stem": "demo-005", "agent_id": "A01", "campaign": "energy-inbound", "call_type": "support",
        "started_at": "2026-11-17T09:35:00+01:00",
        "customer": _c("en-gb-x-rp", 150, 40),
        "turns": [
            ("a", "Good morning, thank you for calling Brightwave Energy, my name is Laura, how can I help you?"),
            ("c", "Good morning. My smart meter stopped sending readings about two weeks ago, and the display in "
                  "the kitchen just says no signal."),
            ("a", "I'm sorry about that, let's get it sorted. Could I have your account number, please?"),
            ("c", "Yes, it's B W seven seven one four two zero."),
            ("a", "Thank you, Mr Clarke. I need to check the meter's connection with our technical team. Would "
                  "you mind if I put you on hold for a moment?"),
            ("c", "No, that's fine."),
            ("a", "Thank you. Please hold, I'll be back with you shortly.", {"hold": 40.0}),
            ("a", "Thank you for holding, Mr Clarke. The technical team can see that your meter lost its "
                  "connection to the network after a software update. They have just sent a reset, and it should "
                  "start sending readings again within twenty-four hours."),
            ("c", "Oh, that's good. Do I need to do anything?"),
            ("a", "Nothing at all. If the display still says no signal tomorrow evening, just switch it off and on "
                  "again at the plug. If that doesn't help, call us back and we'll book an engineer visit at no "
                  "cost."),
            ("c", "Great, thank you."),
            ("a", "You're welcome. So, to recap, the meter has been reset remotely, readings should start again "
                  "within twenty-four hours, and if the display still shows no signal, restart it or call us back "
                  "for a free engineer visit. Thank you for calling Brightwave Energy, have a good day. Goodbye."),
            ("c", "Goodbye."),
        ],
        "labels": {"events": ["hold", "information_given"], "customer_sentiment": "neutral",
                   "customer_sentiment_end": "positive"},
    },
    # ------------------------------------------------------------------------------------------------------
    {
        "stem": "demo-006", "agent_id": "A02", "campaign": "broadband-sales", "call_type": "telesales_cold",
        "direction": "outbound", "started_at": "2026-11-17T15:10:00+01:00",
        "customer": _c("en-gb+f3", 150, 50),
        "turns": [
            ("a", "This is Daniel calling from Skyline Broadband. Am I speaking with Mrs Okafor?"),
            ("c", "Yes, speaking. What's this about?"),
            ("a", "We're bringing full fibre broadband to your street next month, and I'm calling a few "
                  "households to tell them about the launch offer. Do you have a minute?"),
            ("c", "I'm not really interested. I'm already with another provider, and honestly, it's all too "
                  "expensive."),
            ("a", "I completely understand, a lot of people feel that way. Can I ask roughly what you pay at the "
                  "moment?"),
            ("c", "About forty-two pounds a month, for around thirty megabits."),
            ("a", "Thank you. Our launch offer is full fibre at five hundred megabits for twenty-nine pounds a "
                  "month, fixed for twenty-four months, with free installation. So you would get more than ten "
                  "times the speed, and save about thirteen pounds a month."),
            ("c", "Hmm. That is cheaper. But I'm in a contract until January."),
            ("a", "That's no problem at all. We can book the installation for after your contract ends, so you "
                  "won't pay any early exit fees. Would you like a technician to do a free survey of the line, so "
                  "everything is ready in January?"),
            ("c", "Well, if it's free and there's no commitment, all right."),
            ("a", "Wonderful. I have Tuesday the eighth of December at ten in the morning, or Thursday the tenth "
                  "at two in the afternoon. Which suits you better?"),
            ("c", "Thursday at two is better."),
            ("a", "Great. So, to confirm, a free line survey on Thursday the tenth of December at two p.m., with "
                  "no commitment, and the offer is twenty-nine pounds a month for five hundred megabits. You'll "
                  "get a text message confirming the appointment. Thank you for your time, Mrs Okafor, goodbye."),
            ("c", "Bye now."),
        ],
        "labels": {"opening_compliant": False, "missing": ["greeting"],
                   "events": ["objection", "objection_handled", "appointment_set", "information_given"],
                   "customer_sentiment": "neutral", "customer_sentiment_end": "positive", "price_given": True},
    },
    # ------------------------------------------------------------------------------------------------------
    {
        "stem": "demo-007", "agent_id": "A03", "campaign": "broadband-sales", "call_type": "telesales_warm",
        "direction": "outbound", "started_at": "2026-11-18T10:05:00+01:00",
        "customer": _c("en-us+m3", 150, 35),
        "turns": [
            ("a", "Good morning, this is Giulia from Skyline Broadband. Am I speaking with Mr Novak?"),
            ("c", "Yes, that's me."),
            ("a", "Thank you for ordering on our website yesterday. I'm calling to confirm a few details of your "
                  "order, it will only take two minutes. Is now a good time?"),
            ("c", "Sure, go ahead."),
            ("a", "You chose the Fibre Three Hundred package, at twenty-six pounds a month for eighteen months, "
                  "with the Skyline router included. Is that correct?"),
            ("c", "Yes. But the website didn't say if there's a setup fee."),
            ("a", "Good question. There's no setup fee with this package, and the router is free. The only "
                  "one-off cost is delivery of the router, which is four pounds ninety-nine."),
            ("c", "Okay, that's fine."),
            ("a", "The router will be delivered to eight Mill Lane on Friday by courier, between eight a.m. and "
                  "six p.m., and your line goes live next Wednesday, the twenty-fifth."),
            ("c", "Can the courier leave it with a neighbour if I'm out?"),
            ("a", "Yes, I've added a note to leave it with a neighbour if nobody answers. You'll also get a "
                  "tracking link by text."),
            ("c", "Perfect."),
            ("a", "So, to recap, Fibre Three Hundred at twenty-six pounds a month, router delivery on Friday for "
                  "four pounds ninety-nine, it can be left with a neighbour, and your line goes live on Wednesday "
                  "the twenty-fifth. Thank you for choosing Skyline Broadband, Mr Novak. Goodbye."),
            ("c", "Thanks, bye."),
        ],
        "labels": {"events": ["order_taken", "information_given"], "customer_sentiment": "positive",
                   "customer_sentiment_end": "positive", "price_given": True},
    },
    # ------------------------------------------------------------------------------------------------------
    {
        "stem": "demo-008", "agent_id": "A04", "campaign": "broadband-sales", "call_type": "telesales_hot",
        "direction": "outbound", "started_at": "2026-11-18T16:30:00+01:00",
        "customer": _c("en-gb-x-rp+f3", 150, 62),
        "turns": [
            ("a", "Good afternoon, I'm calling from Skyline Broadband. Am I speaking with Ms Evans?"),
            ("c", "Yes, hello."),
            ("a", "Hello, Ms Evans. You've been with us for three years now, so I'm calling with an offer for "
                  "existing customers. Have you got a couple of minutes?"),
            ("c", "Go on then."),
            ("a", "At the moment you pay thirty-four pounds a month for Fibre One Hundred. We can upgrade you to "
                  "Fibre Five Hundred, plus our TV Basics pack, for thirty-six pounds a month. That's five times "
                  "the speed, and TV, for just two pounds more."),
            ("c", "I don't really watch much TV. And I don't want to sign another long contract."),
            ("a", "That's fair. In that case, you could take the Fibre Five Hundred upgrade on its own, for "
                  "thirty-two pounds a month. That's two pounds less than you pay now, and it's a twelve month "
                  "contract, not twenty-four."),
            ("c", "Cheaper and faster? Why didn't anyone tell me before?"),
            ("a", "It's a new loyalty price this month. Shall I go ahead and upgrade you?"),
            ("c", "Yes, all right, let's do it."),
            ("a", "Great. The upgrade happens remotely on Monday the twenty-third, with no engineer visit, and no "
                  "need to change your router. Your first bill at the new price will be in December."),
            ("c", "Lovely."),
            ("a", "So, to recap, Fibre Five Hundred at thirty-two pounds a month, a twelve month contract, the "
                  "upgrade on Monday the twenty-third, and the new price from your December bill. Thank you for "
                  "staying with Skyline Broadband, Ms Evans. Goodbye."),
            ("c", "Bye, thank you."),
        ],
        "labels": {"opening_compliant": False, "missing": ["agent_name"],
                   "events": ["objection", "objection_handled", "order_taken", "information_given"],
                   "customer_sentiment": "positive", "customer_sentiment_end": "positive", "price_given": True},
    },
    # ------------------------------------------------------------------------------------------------------
    {
        "stem": "demo-009", "agent_id": "A01", "campaign": "survey-q4", "call_type": "survey",
        "direction": "outbound", "started_at": "2026-11-19T11:00:00+01:00", "agent_channel": "right",
        "format": "ogg",
        "customer": _c("en-us", 150, 45),
        "turns": [
            ("a", "Good morning, this is Laura calling from Brightwave Energy. Am I speaking with Mr Brooks?"),
            ("c", "Yes. Who's this again?"),
            ("a", "My name is Laura, from Brightwave Energy, your electricity supplier. We're running a short "
                  "customer satisfaction survey, just four questions, and it takes about two minutes. Would you "
                  "be willing to help us?"),
            ("c", "Okay, if it's quick."),
            ("a", "Thank you. First question. On a scale from one to ten, how satisfied are you with Brightwave "
                  "Energy overall?"),
            ("c", "I'd say eight."),
            ("a", "Thank you. Second question. How easy is it to understand your bill, from one to ten?"),
            ("c", "Hmm, maybe six. The standing charge part is a bit confusing."),
            ("a", "Thank you, I've noted that the standing charge is confusing. Third question. Have you used our "
                  "mobile app in the last three months?"),
            ("c", "Yes, I use it to send my meter readings."),
            ("a", "And the last question. How likely are you to recommend Brightwave to a friend, from one to "
                  "ten?"),
            ("c", "Seven."),
            ("a", "That's everything. So your answers were eight for overall satisfaction, six for the bill, yes "
                  "to the app, and seven for recommending us. Thank you very much for your time, Mr Brooks. Have a "
                  "nice day, goodbye."),
            ("c", "You too, bye."),
        ],
        "labels": {"events": ["survey_completed"], "customer_sentiment": "neutral",
                   "customer_sentiment_end": "positive"},
    },
    # ------------------------------------------------------------------------------------------------------
    {
        "stem": "demo-010", "agent_id": "A03", "campaign": "energy-inbound", "call_type": "information",
        "started_at": "2026-11-19T09:20:00+01:00", "language": "it",
        "customer": _c("it+m3", 160, 35),
        "turns": [
            ("a", "Buongiorno, grazie per aver chiamato Brightwave Energia, sono Giulia, come posso aiutarla?"),
            ("c", "Buongiorno. Volevo sapere qualcosa sulle vostre offerte per la luce. Ho appena cambiato casa."),
            ("a", "Certo, con piacere. Mi può dire in che città si trova la nuova casa?"),
            ("c", "A Bologna, in centro."),
            ("a", "Perfetto. Per Bologna abbiamo due offerte. L'offerta Luce Fissa costa ventidue centesimi al "
                  "chilowattora, con il prezzo bloccato per dodici mesi. L'offerta Luce Variabile segue il prezzo "
                  "di mercato, e questo mese costa venti centesimi al chilowattora."),
            ("c", "E ci sono costi di attivazione?"),
            ("a", "No, l'attivazione è gratuita per entrambe le offerte. C'è solo una quota fissa di dieci euro al "
                  "mese per la gestione del contatore."),
            ("c", "Va bene. E quanto tempo ci vuole per attivare il contratto?"),
            ("a", "Di solito servono circa due settimane. Le serve il codice POD, che trova sulla bolletta del "
                  "precedente inquilino, oppure sul contatore."),
            ("c", "Perfetto, allora cerco il codice e vi richiamo."),
            ("a", "Benissimo. Riepilogando: Luce Fissa a ventidue centesimi, bloccati per dodici mesi, Luce "
                  "Variabile a venti centesimi questo mese, e attivazione gratuita in circa due settimane. Grazie "
                  "per aver chiamato Brightwave Energia, buona giornata, arrivederci."),
            ("c", "Grazie a lei, arrivederci."),
        ],
        "labels": {"events": ["information_given"], "customer_sentiment": "positive",
                   "customer_sentiment_end": "positive", "price_given": True},
    },
    # ------------------------------------------------------------------------------------------------------
    {
        "stem": "demo-011", "agent_id": "A03", "campaign": "energy-inbound", "call_type": "complaint",
        "started_at": "2026-11-24T15:45:00+01:00", "language": "it",
        "customer": _c("it+m1", 170, 30, level=-18.0),
        "turns": [
            ("a", "Buongiorno, grazie per aver chiamato Brightwave Energia, sono Giulia, come posso aiutarla?"),
            ("c", "Buongiorno. Guardi, vorrei fare un reclamo. Il tecnico doveva venire ieri mattina per il "
                  "contatore, e non si è presentato nessuno."),
            ("a", "Mi dispiace molto. Mi può dare il numero del contratto, per favore?"),
            ("c", "Sì, è I T quattro cinque otto due uno."),
            ("a", "Grazie. Vedo l'appuntamento di ieri, dalle nove alle tredici. Purtroppo risulta annullato, ma "
                  "non vedo nessuna comunicazione inviata a lei."),
            ("c", "Appunto. Ho preso mezza giornata di ferie per niente, e nessuno mi ha avvisato."),
            ("a", "Ha ragione, e le chiedo scusa a nome di Brightwave Energia. Non è accettabile che "
                  "l'appuntamento sia stato annullato senza avvisarla."),
            ("c", "E adesso cosa succede?"),
            ("a", "Registro subito il suo reclamo e la trasferisco all'ufficio controllo qualità. Loro possono "
                  "fissare un nuovo appuntamento con priorità, e valutare un rimborso per il disagio."),
            ("c", "Va bene, grazie."),
            ("a", "Riepilogo: reclamo per l'appuntamento mancato di ieri, numero di pratica R sette tre uno, e ora "
                  "la passo al controllo qualità. Grazie per la pazienza, arrivederci."),
            ("c", "Arrivederci."),
        ],
        "labels": {"events": ["complaint", "apology", "transfer_to_quality"], "customer_sentiment": "negative",
                   "customer_sentiment_end": "neutral"},
    },
    # ------------------------------------------------------------------------------------------------------
    {
        "stem": "demo-012", "agent_id": "A02", "campaign": "energy-inbound", "call_type": "support",
        "started_at": "2026-11-20T10:15:00+01:00",
        "customer": _c("en-us+f3", 150, 65),
        "turns": [
            ("a", "Good morning, Brightwave Energy, how can I help?"),
            ("c", "Hi, I'd like to give you a meter reading. I tried to do it in the app, but it keeps giving me "
                  "an error."),
            ("a", "Sorry about that. I can take it for you. What's your account number?"),
            ("c", "B W two nine nine four one six."),
            ("a", "Thanks. And the reading?"),
            ("c", "It's four five two eight one."),
            ("a", "Four five two eight one. Okay, that's been added to your account, and your next bill will use "
                  "it."),
            ("c", "Great. And the app? It says error code five hundred and three."),
            ("a", "That code means the app was being updated. It should work again now. If it doesn't, try "
                  "logging out and back in."),
            ("c", "Okay, I'll try that."),
            ("a", "So, the reading four five two eight one is on your account, and the app should work again. "
                  "Thanks for calling Brightwave Energy, have a nice day, bye."),
            ("c", "Bye."),
        ],
        "labels": {"opening_compliant": False, "missing": ["agent_name"], "events": ["information_given"],
                   "customer_sentiment": "neutral", "customer_sentiment_end": "positive"},
    },
    # ------------------------------------------------------------------------------------------------------
    {
        "stem": "demo-013", "agent_id": "A04", "campaign": "energy-inbound", "call_type": "order",
        "started_at": "2026-11-20T13:50:00+01:00", "channels": 1, "agent_channel": None,
        "format": "wav_mulaw",
        "customer": _c("en-gb+f3", 155, 68),
        "turns": [
            ("a", "Good afternoon, thank you for calling Brightwave Energy, my name is Mark, how can I help you?"),
            ("c", "Hi, I'd like to add boiler cover to my account, please."),
            ("a", "Account number?"),
            ("c", "It's B W one two three, four five six. The account is in the name of Susan Lee."),
            ("a", "Okay, got it. Boiler Care Basic is nine pounds a month, with one annual service and repairs "
                  "included. Shall I add it?"),
            ("c", "Does that cover the radiators as well, or only the boiler?"),
            ("a", "The boiler and the controls. Radiators are in Boiler Care Plus, that's fourteen pounds."),
            ("c", "Basic is fine, thanks. Yes please, starting next month."),
            ("a", "Okay, done, it starts next month."),
            ("c", "Great, thanks. Will I get anything in writing?"),
            ("a", "Yeah, in the post. Bye."),
        ],
        "labels": {"closing_compliant": False, "closing_missing": ["recap", "thanks"],
                   "events": ["order_taken", "information_given"], "customer_sentiment": "positive",
                   "customer_sentiment_end": "neutral", "price_given": True},
    },
    # ------------------------------------------------------------------------------------------------------
    {
        "stem": "demo-014", "agent_id": "A01", "campaign": "energy-inbound", "call_type": "information",
        "started_at": "2026-11-23T09:05:00+01:00", "format": "wav_mulaw",
        "customer": _c("en-gb-x-rp+f3", 150, 58),
        "turns": [
            ("a", "Good morning, thank you for calling Brightwave Energy, my name is Laura, how can I help you?"),
            ("c", "Hello. I'm moving house on Friday. What do I need to do about my electricity account?"),
            ("a", "Congratulations on the move. Just give us a meter reading on moving day, and your new address, "
                  "and we'll send you a final bill within two weeks."),
            ("c", "Can I do that online?"),
            ("a", "Yes, in the app or on our website, under moving home. It takes about five minutes."),
            ("c", "Great, that's easy."),
            ("a", "So, a meter reading and your new address on Friday, online or in the app, and the final bill "
                  "within two weeks. Thank you for calling, goodbye."),
            ("c", "Bye, thanks."),
        ],
        "labels": {"events": ["information_given"], "customer_sentiment": "positive",
                   "customer_sentiment_end": "positive"},
    },
    # ------------------------------------------------------------------------------------------------------
    {
        "stem": "demo-015", "agent_id": "A02", "campaign": "broadband-sales", "call_type": "telesales_cold",
        "direction": "outbound", "started_at": "2026-11-23T11:30:00+01:00",
        "customer": _c("en-gb+m3", 160, 38),
        "turns": [
            ("a", "Hi, is that Mr Patel? I'm calling about your broadband."),
            ("c", "Who is this? Which company are you calling from?"),
            ("a", "We're putting fibre in your area. It's much faster than what you've got now, five hundred "
                  "megabits, all new cables. Do you want it?"),
            ("c", "Hang on, I still don't know who you are. How did you get my number?"),
            ("a", "It's on our list. Anyway, it's only twenty-nine pounds a month."),
            ("c", "I'm not interested, thanks. I've just signed a new contract with my current provider, and I'm "
                  "at work."),
            ("a", "But it's really cheap, and really fast."),
            ("c", "I said I'm not interested. Please take me off your list."),
            ("a", "Right."),
        ],
        "labels": {"opening_compliant": False, "missing": ["agent_name", "company_name"],
                   "closing_compliant": False, "closing_missing": ["recap", "thanks", "goodbye"],
                   "events": ["objection"], "customer_sentiment": "negative",
                   "customer_sentiment_end": "negative", "price_given": True},
    },
    # ------------------------------------------------------------------------------------------------------
    {
        "stem": "demo-016", "agent_id": "A04", "campaign": "energy-inbound", "call_type": "support",
        "started_at": "2026-11-23T14:20:00+01:00",
        "customer": _c("en-029", 150, 45),
        "turns": [
            ("a", "Brightwave Energy, Mark speaking."),
            ("c", "Hi Mark. My prepayment meter won't accept the top-up I bought this morning. I bought twenty "
                  "pounds of credit in the shop, and when I type in the code, it says rejected."),
            ("a", "Okay. Give me the meter serial number, it's on the front of the meter."),
            ("c", "It's one seven zero zero, four four eight two, nine one."),
            ("a", "And the top-up code?"),
            ("c", "It's five one two nine, three three eight zero, six six one four."),
            ("c", "Hello? Are you still there?", {"gap": 8.2}),
            ("a", "Yes, I'm here, I was checking. The code was issued for an old meter serial number. I've just "
                  "made a new code for the same twenty pounds."),
            ("c", "Oh, okay. What's the new code?"),
            ("a", "The new code is eight eight two one, four zero zero seven, three five five two."),
            ("c", "Let me try it. Okay, it says accepted!"),
            ("a", "Great. So your twenty pounds of credit is now on the meter, and your account has the correct "
                  "serial number for future top-ups. Thank you for calling Brightwave Energy, and have a good "
                  "afternoon. Goodbye."),
            ("c", "Thanks, bye."),
        ],
        "labels": {"opening_compliant": False, "missing": ["greeting"], "events": ["information_given"],
                   "customer_sentiment": "neutral", "customer_sentiment_end": "positive"},
    },
    # ------------------------------------------------------------------------------------------------------
    {
        "stem": "demo-017", "agent_id": "A01", "campaign": "energy-inbound", "call_type": "complaint",
        "started_at": "2026-11-24T10:10:00+01:00",
        "customer": _c("en-gb+f3", 150, 52),
        "turns": [
            ("a", "Good morning, thank you for calling Brightwave Energy, my name is Laura, how can I help you?"),
            ("c", "Hello Laura. I want to make a complaint, really. I was promised a call back last week about my "
                  "gas bill, and nobody ever called me."),
            ("a", "I'm really sorry about that. Could you tell me what the original question about the bill was?"),
            ("c", "My gas bill says I used twice as much as last winter, and I think the meter reading is wrong. "
                  "The reading on the bill is eight thousand and twelve, but my meter says seven thousand and "
                  "twelve."),
            ("a", "Thank you. Could I have your account number, please?"),
            ("c", "It's B W six one three three seven eight."),
            ("a", "Thank you. You're right, it looks like the reading was typed in wrong, with an eight instead of "
                  "a seven. I apologise on behalf of Brightwave Energy, both for the mistake and for the missed "
                  "call back."),
            ("c", "Thank you. So what happens now?"),
            ("a", "I've corrected the reading to seven thousand and twelve, and the bill will be recalculated. "
                  "Your new bill will be about seventy pounds lower. And for the missed call back, I've added a "
                  "goodwill credit of twenty pounds to your account."),
            ("c", "Oh, that's very kind. Thank you."),
            ("a", "You're welcome. To recap, the reading is corrected, a new bill will arrive within three working "
                  "days, and twenty pounds of credit is on your account. Thank you for calling Brightwave Energy, "
                  "and have a lovely day. Goodbye."),
            ("c", "Goodbye, and thanks again."),
        ],
        "labels": {"events": ["complaint", "apology", "information_given"], "customer_sentiment": "neutral",
                   "customer_sentiment_end": "positive"},
    },
    # ------------------------------------------------------------------------------------------------------
    {
        "stem": "demo-018", "agent_id": "A03", "campaign": "survey-q4", "call_type": "survey",
        "direction": "outbound", "started_at": "2026-11-24T12:00:00+01:00", "format": "mp3",
        "customer": _c("en-us-nyc", 155, 40),
        "turns": [
            ("a", "Good afternoon, this is Giulia calling from Brightwave Energy. Am I speaking with Mr Russo?"),
            ("c", "Yeah, that's me."),
            ("a", "We're running a short customer survey, four questions in about two minutes. Would you be happy "
                  "to take part?"),
            ("c", "Sure, why not. I've got a few things to say."),
            ("a", "Thank you. First question. On a scale from one to ten, how satisfied are you with Brightwave "
                  "Energy overall?"),
            ("c", "Honestly, four. My prices went up twice this year."),
            ("a", "Thank you for telling me. Second question. When you last contacted us, was your problem solved "
                  "on the first call?"),
            ("c", "No. I had to call three times about a wrong bill."),
            ("a", "I've noted that. Third question. Have you used our mobile app in the last three months?"),
            ("c", "No, I don't use apps."),
            ("a", "And the last question. How likely are you to recommend Brightwave Energy to a friend, from one "
                  "to ten?"),
            ("c", "Three, I'm afraid."),
            ("a", "Thank you, that's all the questions. So your answers were four overall, not solved on the "
                  "first call, no app, and three for recommending us. Your comments about prices and the billing "
                  "problem will go to our customer experience team. Thank you very much for your time, Mr Russo. "
                  "Goodbye."),
            ("c", "Bye."),
        ],
        "labels": {"events": ["survey_completed"], "customer_sentiment": "negative",
                   "customer_sentiment_end": "neutral"},
    },
    # ------------------------------------------------------------------------------------------------------
    {
        "stem": "demo-019", "agent_id": "A02", "campaign": "energy-inbound", "call_type": "order",
        "started_at": "2026-11-25T09:40:00+01:00", "agent_channel": "right",
        "customer": _c("en-us+f3", 150, 68),
        "turns": [
            ("a", "Good morning, thank you for calling Brightwave Energy, my name is Daniel, how can I help you?"),
            ("c", "Hi. I've just moved into a new flat, and I'd like to set up an electricity and gas account "
                  "with you."),
            ("a", "Sure. What's the address of the new flat?"),
            ("c", "Flat three, twenty-seven Queen Street, Liverpool."),
            ("a", "Thanks. And your full name, please?"),
            ("c", "Anna Kowalski."),
            ("a", "Thank you, Ms Kowalski. For a dual fuel account we recommend Fix Twelve. Electricity is "
                  "twenty-two pence per kilowatt hour, and gas is six point eight pence, both fixed for twelve "
                  "months. The standing charges are fifty-one pence a day for electricity, and thirty-one pence "
                  "for gas."),
            ("c", "That's fine. Let's go with that."),
            ("a", "Okay. Do you have the meter readings?"),
            ("c", "Yes. Electricity is one two zero four four, and gas is zero eight eight one two."),
            ("a", "Got them. How would you like to pay?"),
            ("c", "Monthly direct debit, please."),
            ("a", "Okay, that's set up."),
            ("c", "Great. Is there anything else I need to do?"),
            ("a", "No. Okay, thanks, bye."),
        ],
        "labels": {"closing_compliant": False, "closing_missing": ["recap"],
                   "events": ["order_taken", "information_given"], "customer_sentiment": "neutral",
                   "customer_sentiment_end": "neutral", "price_given": True},
    },
    # ------------------------------------------------------------------------------------------------------
    {
        "stem": "demo-020", "agent_id": "A04", "campaign": "energy-inbound", "call_type": "information",
        "started_at": "2026-11-25T11:55:00+01:00",
        "customer": _c("en-gb-x-gbclan", 150, 42),
        "turns": [
            ("a", "Good morning, my name is Mark, how can I help you?"),
            ("c", "Morning. I got a letter saying my direct debit is going up. Why is that?"),
            ("a", "We review direct debits every six months. Your usage last winter was higher than we "
                  "estimated, so the new amount is sixty-eight pounds a month, from the first of December."),
            ("c", "And if I think that's too much?"),
            ("a", "You can send us a fresh meter reading, and we'll recalculate it. If your balance is in credit, "
                  "the payment may go down."),
            ("c", "Okay, I'll send a reading tonight."),
            ("a", "Perfect. So, send a reading tonight, and we'll check the sixty-eight pound amount within two "
                  "days. Thank you for calling, goodbye."),
            ("c", "Cheers, bye."),
        ],
        "labels": {"opening_compliant": False, "missing": ["company_name"], "events": ["information_given"],
                   "customer_sentiment": "neutral", "customer_sentiment_end": "neutral"},
    },
    # ------------------------------------------------------------------------------------------------------
    {
        "stem": "demo-021", "agent_id": "A01", "campaign": "broadband-sales", "call_type": "telesales_warm",
        "direction": "outbound", "started_at": "2026-11-25T15:30:00+01:00",
        "customer": _c("en-gb-x-rp+f3", 150, 62),
        "turns": [
            ("a", "Good afternoon, this is Laura calling from Skyline Broadband. Am I speaking with Mrs Thompson?"),
            ("c", "Yes, hello. Thanks for calling back."),
            ("a", "You left your details on our website yesterday, asking about our broadband and TV bundles. Is "
                  "now still a good time?"),
            ("c", "Yes, it is. I wanted to know if the bundle includes sports channels."),
            ("a", "The Home Bundle includes five hundred megabit fibre and over eighty TV channels, for forty-five "
                  "pounds a month. Sports are an add-on, for fifteen pounds a month, and you can cancel the sports "
                  "add-on at any time."),
            ("c", "And how long is the contract?"),
            ("a", "The bundle is eighteen months. The TV box and the router are included, and installation is "
                  "free."),
            ("c", "Okay, I think I'll go for it, with the sports."),
            ("a", "Lovely. The equipment would be delivered on Monday the thirtieth of November, and the engineer "
                  "installs the fibre on Wednesday the second of December, between eight and one."),
            ("c", "Wednesday is fine, I work from home."),
            ("a", "Perfect. To recap, the Home Bundle at forty-five pounds a month, plus sports at fifteen pounds, "
                  "so sixty pounds in total, for eighteen months, equipment delivered on Monday the thirtieth, and "
                  "installation on Wednesday the second of December in the morning. You'll get an email "
                  "confirmation today. Thank you for choosing Skyline Broadband, Mrs Thompson. Goodbye."),
            ("c", "Thank you, goodbye."),
        ],
        "labels": {"events": ["order_taken", "information_given"], "customer_sentiment": "positive",
                   "customer_sentiment_end": "positive", "price_given": True},
    },
    # ------------------------------------------------------------------------------------------------------
    {
        "stem": "demo-022", "agent_id": "A03", "campaign": "broadband-support", "call_type": "support",
        "started_at": "2026-11-26T10:25:00+01:00", "format": "flac",
        "channels": 1, "agent_channel": None,
        "customer": _c("en-us", 150, 38),
        "turns": [
            ("a", "Good morning, thank you for calling Skyline Broadband, my name is Giulia, how can I help you?"),
            ("c", "Hi. My internet keeps dropping out every evening, for about five minutes at a time."),
            ("a", "I'm sorry about that. What colour is the light on the front of the router when it drops?"),
            ("c", "It goes orange, then green again."),
            ("a", "Thank you. I can see errors on your line in the evenings. I'm running a line reset now, and I'll "
                  "set the router to a more stable profile. It takes about ten minutes."),
            ("c", "Do I need to restart anything?"),
            ("a", "Only if the light stays orange for more than ten minutes. Then switch the router off for "
                  "thirty seconds, and on again."),
            ("c", "Okay."),
            ("a", "That should fix it. Bye."),
        ],
        "labels": {"closing_compliant": False, "closing_missing": ["recap", "thanks"],
                   "events": ["information_given"], "customer_sentiment": "neutral",
                   "customer_sentiment_end": "neutral"},
    },
    # ------------------------------------------------------------------------------------------------------
    {
        "stem": "demo-023", "agent_id": "A02", "campaign": "survey-q4", "call_type": "survey",
        "direction": "outbound", "started_at": "2026-11-26T16:05:00+01:00",
        "customer": _c("en-gb+m3", 155, 44),
        "turns": [
            ("a", "Good afternoon, this is Daniel calling from Brightwave Energy. Am I speaking with Mrs Walsh?"),
            ("c", "Yes. What is it?"),
            ("a", "We're running a short customer survey, four questions, in about two minutes. Would you be "
                  "willing to help us?"),
            ("c", "I suppose so, but I'm cooking dinner."),
            ("a", "Thank you, I'll be quick. First question. On a scale from one to ten, how satisfied are you "
                  "with Brightwave Energy overall?"),
            ("c", "Seven, I suppose."),
            ("a", "Thank you. Second question. How easy is it to understand your bill, from one to ten?"),
            ("c", "Sorry, the pasta is boiling over. I really have to go. Can we stop here?"),
            ("a", "Of course, no problem at all. I'll save your first answer and mark the survey as finished, so "
                  "we won't call you again about it. Thank you for your time, Mrs Walsh, and enjoy your dinner. "
                  "Goodbye."),
            ("c", "Thanks, bye."),
        ],
        "labels": {"events": [], "customer_sentiment": "neutral", "customer_sentiment_end": "neutral"},
    },
    # ------------------------------------------------------------------------------------------------------
    {
        "stem": "demo-024", "agent_id": "A04", "campaign": "broadband-sales", "call_type": "telesales_hot",
        "direction": "outbound", "started_at": "2026-11-26T13:10:00+01:00", "agent_channel": "right",
        "customer": _c("en-029", 160, 40, level=-19.0),
        "turns": [
            ("a", "Good afternoon, this is Mark from Skyline Broadband. Am I speaking with Mr Fischer?"),
            ("c", "Yes, speaking."),
            ("a", "Mister Fischer, you're an existing customer, and this week only we have a TV and mobile bundle "
                  "for existing customers. For just twenty pounds more a month, you get eighty channels and a SIM "
                  "card with unlimited data."),
            ("c", "Thanks, but I really don't need TV. I watch everything online, and my phone is paid for by my "
                  "work, so there's really no point in adding it."),
            ("a", "But everyone says that, and then they love it. Twenty pounds is nothing, it's less than a "
                  "pizza a week.", {"overlap": 1.8}),
            ("c", "I told you, I'm not interested. And I don't like being pushed."),
            ("a", "Look, you're not listening to me. This offer ends on Friday, and you won't get it again."),
            ("c", "No, you're not listening to me. I don't want it. Goodbye."),
            ("a", "Fine, your loss."),
        ],
        "labels": {"closing_compliant": False, "closing_missing": ["recap", "thanks", "goodbye"],
                   "events": ["objection"], "customer_sentiment": "negative", "customer_sentiment_end": "negative",
                   "rude_agent_phrase": True, "agent_overtalk": True, "price_given": True},
    },
    # ------------------------------------------------------------------------------------------------------
    {
        "stem": "demo-025", "agent_id": "A01", "campaign": "energy-inbound", "call_type": "information",
        "started_at": "2026-11-27T09:30:00+01:00",
        "customer": _c("en-us-nyc", 165, 50, level=-16.0),
        "turns": [
            ("a", "Good morning, thank you for calling Brightwave Energy, my name is Laura, how can I help you?"),
            ("c", "Yeah, you can explain why my prices went up again! This is the second time this year, and "
                  "nobody even told me!"),
            ("a", "I understand how frustrating that is. Let me check your account and explain exactly what "
                  "changed. Could I have your account number?"),
            ("c", "B W four zero two two nine one. And don't give me some story about the market."),
            ("a", "Thank you, Mr Romano. You're on our Flex tariff, which follows the energy price cap. On the "
                  "first of October the unit rate went from twenty-four point five to twenty-six pence per "
                  "kilowatt hour, and we sent you a letter about it in August."),
            ("c", "I never got any letter! Twenty-six pence? That's outrageous, I'm paying a fortune already!",
             {"overlap": 1.4}),
            ("a", "I'm sorry that the letter didn't reach you, and I apologise on behalf of Brightwave Energy for "
                  "that. The good news is that you can switch to our Fix Twelve tariff today. It's twenty-two "
                  "pence per kilowatt hour, fixed for twelve months, and there's no exit fee on your current "
                  "tariff."),
            ("c", "Twenty-two? So I've been paying more all this time for nothing?"),
            ("a", "The fixed price was only launched on the first of November. Based on your usage, switching "
                  "would save you about eleven pounds a month."),
            ("c", "Fine. But I'm not happy about this. Just send me the details in writing."),
            ("a", "Of course. I'm emailing you the Fix Twelve details now, and you can accept them online, or "
                  "call us back. Thank you for calling Brightwave Energy, Mr Romano, and goodbye."),
            ("c", "Yeah, bye."),
        ],
        "labels": {"events": ["complaint", "apology", "information_given"], "customer_sentiment": "negative",
                   "customer_sentiment_end": "negative", "angry_customer": True, "customer_overtalk": True,
                   "price_given": True},
    },
    # ------------------------------------------------------------------------------------------------------
    {
        "stem": "demo-026", "agent_id": "A03", "campaign": "energy-inbound", "call_type": "order",
        "started_at": "2026-11-27T14:40:00+01:00", "format": "ogg",
        "customer": _c("en-gb-x-rp", 150, 36),
        "turns": [
            ("a", "Good afternoon, thank you for calling Brightwave Energy, my name is Giulia, how can I help you?"),
            ("c", "Hello. I'd like to order the electric car charger I saw in your newsletter."),
            ("a", "Wonderful. That's the Brightwave Home Charger, seven kilowatts. It's six hundred and forty-nine "
                  "pounds, including standard installation. Can I have your account number?"),
            ("c", "Yes, B W eight one five five two three."),
            ("a", "Thank you, Mr Ahmed. Standard installation covers up to ten metres of cable from your fuse "
                  "box. Is your driveway closer than that?"),
            ("c", "Yes, it's about five metres."),
            ("a", "Perfect. Would you also like our EV Night tariff? It's nine pence per kilowatt hour between "
                  "midnight and five a.m., which makes charging much cheaper."),
            ("c", "Not right now, thanks. Maybe later."),
            ("a", "No problem. We can install on Tuesday the first of December, or Thursday the third. Which do "
                  "you prefer?"),
            ("c", "Thursday the third, please."),
            ("a", "Booked. Payment is taken when the installation is finished. So, to recap: one Home Charger at "
                  "six hundred and forty-nine pounds including installation, installed on Thursday the third of "
                  "December, paid on completion, and no tariff change. You'll receive a confirmation email today. "
                  "Thank you for your order, Mr Ahmed. Goodbye."),
            ("c", "Thanks very much, goodbye."),
        ],
        "labels": {"events": ["order_taken", "information_given"], "customer_sentiment": "positive",
                   "customer_sentiment_end": "positive", "price_given": True},
    },
]

# --- Personal data planted on purpose (issue 15: redaction), demo-027..032 ------------------------------------
# `pii` lists what each of these calls says that is personal data: (entity type, the words as spoken, the value
# written the usual way, a group shared by the parts of one value said over two turns). Every occurrence of the
# words in the call's turns is one planted item; the generator writes their spans (turn, characters, seconds) to
# the truth file. All values are fiction: the card numbers pass the Luhn check, the IBANs are the standard
# examples, the fiscal code and VAT number are made up with valid check characters.
PII_CALLS = [
    # ------------------------------------------------------------------------------------------------------
    {
        "stem": "demo-027", "agent_id": "A02", "campaign": "energy-inbound", "call_type": "support",
        "started_at": "2026-11-25T11:05:00+01:00",
        "customer": {"engine": "piper", "length_scale": 1.05, "pitch": 480, "tempo": 1.0, "level": -21.0},
        "turns": [
            ("a", "Good morning, thank you for calling Brightwave Energy, my name is Daniel, how can I help you?"),
            ("c", "Hello, my name is Sarah Collins. I'd like to pay my overdue bill by card, please."),
            ("a", "Of course, Ms Collins. The balance is sixty-four pounds. Can I take the long number on the "
                  "card?"),
            ("c", "Yes, it's four seven one six, two zero eight three,"),
            ("a", "Okay."),
            ("c", "five five one nine, four four two zero."),
            ("a", "Thank you. And the expiry date?"),
            ("c", "Oh nine, twenty-eight."),
            ("a", "And the three digit security code on the back of the card?"),
            ("c", "Four five two."),
            ("a", "Thank you, the payment of sixty-four pounds has gone through. So, to recap, your balance is now "
                  "zero, and you'll get a receipt by email. Thank you for calling Brightwave Energy, Ms Collins. "
                  "Goodbye."),
            ("c", "Thanks, bye."),
        ],
        "pii": [
            ("PERSON", "Daniel"), ("PERSON", "Sarah Collins"), ("PERSON", "Collins"),
            ("CREDIT_CARD", "four seven one six, two zero eight three", "4716208355194420", "card"),
            ("CREDIT_CARD", "five five one nine, four four two zero", "4716208355194420", "card"),
            ("CARD_EXPIRY", "Oh nine, twenty-eight", "09/28"),
            ("CARD_SECURITY_CODE", "Four five two", "452"),
        ],
        "labels": {"events": [], "customer_sentiment": "neutral", "customer_sentiment_end": "neutral"},
    },
    # ------------------------------------------------------------------------------------------------------
    {
        "stem": "demo-028", "agent_id": "A01", "campaign": "broadband-support", "call_type": "support",
        "started_at": "2026-11-25T15:20:00+01:00",
        "customer": {"engine": "piper", "length_scale": 1.1, "pitch": -420, "tempo": 1.0, "level": -22.0},
        "turns": [
            ("a", "Good afternoon, thank you for calling Skyline Broadband, my name is Laura, how can I help you?"),
            ("c", "Hi, I'm James Walker. I've got a new mobile number and email, and I'd like to update my "
                  "account."),
            ("a", "Of course, Mr Walker. What's the new mobile number?"),
            ("c", "It's oh seven nine one two, three four five, six seven eight."),
            ("a", "Thank you. And the new email address?"),
            ("c", "james dot walker at outlook dot com."),
            ("a", "Got it. Can you confirm your postcode for security?"),
            ("c", "L S six, one A B. The address is forty two Elm Grove, Leeds."),
            ("a", "Thank you, that all matches. So, to recap, I've updated your mobile number and your email "
                  "address, and you'll get a confirmation text today. Thank you for calling Skyline Broadband. "
                  "Goodbye."),
            ("c", "Great, thanks. Bye."),
        ],
        "pii": [
            ("PERSON", "Laura"), ("PERSON", "James Walker"), ("PERSON", "Walker"),
            ("PHONE_NUMBER", "oh seven nine one two, three four five, six seven eight", "07912 345678"),
            ("EMAIL_ADDRESS", "james dot walker at outlook dot com", "james.walker@outlook.com"),
            ("ADDRESS", "L S six, one A B", "LS6 1AB"),
            ("ADDRESS", "forty two Elm Grove", "42 Elm Grove"),
            ("LOCATION", "Leeds"),
        ],
        "labels": {"events": [], "customer_sentiment": "positive", "customer_sentiment_end": "positive"},
    },
    # ------------------------------------------------------------------------------------------------------
    {
        "stem": "demo-029", "agent_id": "A04", "campaign": "energy-inbound", "call_type": "support",
        "started_at": "2026-11-26T09:45:00+01:00",
        "customer": {"engine": "piper", "length_scale": 1.15, "pitch": 560, "tempo": 1.0, "level": -20.0},
        "turns": [
            ("a", "Good morning, thank you for calling Brightwave Energy, my name is Mark, how can I help you?"),
            ("c", "Hi Mark, this is Priya Shah. I closed my account last month, and you owe me a refund of "
                  "ninety pounds."),
            ("a", "I can see that, Ms Shah. We can pay it straight into your bank account. What's your IBAN?"),
            ("c", "It's G B two nine, N W B K, six zero one six,"),
            ("a", "Yes."),
            ("c", "one three three one, nine two six eight, one nine."),
            ("a", "Thank you, that IBAN is valid. So, to recap, the refund of ninety pounds will reach your "
                  "account within five working days. Thank you for calling Brightwave Energy, and goodbye."),
            ("c", "Thank you, goodbye."),
        ],
        "pii": [
            ("PERSON", "Mark"), ("PERSON", "Priya Shah"), ("PERSON", "Shah"),
            ("IBAN", "G B two nine, N W B K, six zero one six", "GB29 NWBK 6016 1331 9268 19", "iban"),
            ("IBAN", "one three three one, nine two six eight, one nine", "GB29 NWBK 6016 1331 9268 19", "iban"),
        ],
        "labels": {"events": ["information_given"], "customer_sentiment": "neutral",
                   "customer_sentiment_end": "positive"},
    },
    # ------------------------------------------------------------------------------------------------------
    {
        "stem": "demo-030", "agent_id": "A03", "campaign": "energy-inbound", "call_type": "order",
        "started_at": "2026-11-26T11:30:00+01:00", "language": "it",
        "customer": _c("it+m3", 120, 40),
        "turns": [
            ("a", "Buongiorno, grazie per aver chiamato Brightwave Energia, sono Giulia, come posso aiutarla?"),
            ("c", "Buongiorno, mi chiamo Marco Bianchi e vorrei attivare l'offerta Luce Fissa."),
            ("a", "Certo, signor Bianchi. Per il contratto mi serve il suo codice fiscale."),
            ("c", "B come Bologna, N come Napoli, C come Como, M come Milano, R come Roma, C come Como, otto "
                  "cinque, T come Torino, uno zero, F come Firenze, due zero cinque, Z come Zara."),
            ("a", "Grazie. Mi lascia un numero di cellulare?"),
            ("c", "Tre tre nove, otto due uno, cinque quattro zero sette."),
            ("a", "E un indirizzo email per la bolletta?"),
            ("c", "marco punto bianchi chiocciola libero punto it."),
            ("a", "Perfetto, l'offerta è attivata. Riepilogando: Luce Fissa a ventidue centesimi al "
                  "chilowattora, bloccati per dodici mesi, attiva in circa due settimane. Grazie per aver "
                  "chiamato Brightwave Energia, arrivederci."),
            ("c", "Grazie, arrivederci."),
        ],
        "pii": [
            ("PERSON", "Giulia"), ("PERSON", "Marco Bianchi"), ("PERSON", "Bianchi"),
            ("IT_FISCAL_CODE", "B come Bologna, N come Napoli, C come Como, M come Milano, R come Roma, C come "
                               "Como, otto cinque, T come Torino, uno zero, F come Firenze, due zero cinque, Z "
                               "come Zara", "BNCMRC85T10F205Z"),
            ("PHONE_NUMBER", "Tre tre nove, otto due uno, cinque quattro zero sette", "339 821 5407"),
            ("EMAIL_ADDRESS", "marco punto bianchi chiocciola libero punto it", "marco.bianchi@libero.it"),
        ],
        "labels": {"events": ["order_taken", "information_given"], "customer_sentiment": "neutral",
                   "customer_sentiment_end": "neutral", "price_given": True},
    },
    # ------------------------------------------------------------------------------------------------------
    {
        "stem": "demo-031", "agent_id": "A03", "campaign": "energy-inbound", "call_type": "support",
        "started_at": "2026-11-26T15:10:00+01:00", "language": "it",
        "customer": _c("it+f2", 120, 55),
        "turns": [
            ("a", "Buongiorno, grazie per aver chiamato Brightwave Energia, sono Giulia, come posso aiutarla?"),
            ("c", "Buongiorno, sono Anna Ferri della ditta Edilnord. Dobbiamo cambiare il conto per "
                  "l'addebito."),
            ("a", "Certo, signora Ferri. Mi dà la partita IVA dell'azienda?"),
            ("c", "Zero sette quattro otto tre nove uno zero uno cinque nove."),
            ("a", "Grazie. E il nuovo IBAN?"),
            ("c", "I T sei zero, X zero cinque quattro, due otto uno uno, uno zero uno zero,"),
            ("a", "Sì."),
            ("c", "zero zero zero zero, zero uno due tre, quattro cinque sei."),
            ("a", "Grazie. L'indirizzo di fatturazione resta via Garibaldi numero dodici, a Milano?"),
            ("c", "Sì, esatto."),
            ("a", "Perfetto. Riepilogando: dal prossimo mese l'addebito va sul nuovo conto, e riceverà una "
                  "conferma via email. Grazie per aver chiamato Brightwave Energia, arrivederci."),
            ("c", "Arrivederci."),
        ],
        "pii": [
            ("PERSON", "Giulia"), ("PERSON", "Anna Ferri"), ("PERSON", "Ferri"),
            ("IT_VAT_CODE", "Zero sette quattro otto tre nove uno zero uno cinque nove", "07483910159"),
            ("IBAN", "I T sei zero, X zero cinque quattro, due otto uno uno, uno zero uno zero",
             "IT60 X054 2811 1010 0000 0123 456", "iban"),
            ("IBAN", "zero zero zero zero, zero uno due tre, quattro cinque sei", "IT60 X054 2811 1010 0000 0123 456",
             "iban"),
            ("ADDRESS", "via Garibaldi numero dodici", "via Garibaldi 12"),
            ("LOCATION", "Milano"),
        ],
        "labels": {"events": [], "customer_sentiment": "neutral", "customer_sentiment_end": "neutral"},
    },
    # ------------------------------------------------------------------------------------------------------
    {
        "stem": "demo-032", "agent_id": "A03", "campaign": "energy-inbound", "call_type": "support",
        "started_at": "2026-11-27T10:50:00+01:00", "language": "it",
        "customer": _c("it+m1", 120, 30),
        "turns": [
            ("a", "Buongiorno, grazie per aver chiamato Brightwave Energia, sono Giulia, come posso aiutarla?"),
            ("c", "Buongiorno, sono Paolo Greco. Vorrei pagare la bolletta scaduta con la carta di credito."),
            ("a", "Certo, signor Greco. L'importo è di settantotto euro. Mi dice il numero della carta?"),
            ("c", "Cinque tre uno due, sette sei zero quattro, nove nove otto uno, due zero tre uno."),
            ("a", "Grazie. La data di scadenza?"),
            ("c", "Zero sei, ventinove."),
            ("a", "E il codice di sicurezza, le tre cifre sul retro?"),
            ("c", "Otto uno sette."),
            ("a", "Pagamento riuscito. Riepilogando: la bolletta di settantotto euro è pagata, e riceverà la "
                  "ricevuta via email. Grazie per aver chiamato Brightwave Energia, arrivederci."),
            ("c", "Grazie, arrivederci."),
        ],
        "pii": [
            ("PERSON", "Giulia"), ("PERSON", "Paolo Greco"), ("PERSON", "Greco"),
            ("CREDIT_CARD", "Cinque tre uno due, sette sei zero quattro, nove nove otto uno, due zero tre uno",
             "5312760499812031"),
            ("CARD_EXPIRY", "Zero sei, ventinove", "06/29"),
            ("CARD_SECURITY_CODE", "Otto uno sette", "817"),
        ],
        "labels": {"events": [], "customer_sentiment": "neutral", "customer_sentiment_end": "neutral"},
    },
]
CALLS += PII_CALLS
