"""The held-out word set of `benchmarks/vocabulary.py --set heldout`: twenty other rare
words and twenty other ordinary sentences, written after the bias and rescoring constants
were chosen on the main set, and never used to tune them."""

HELDOUT_WORDS = [
    ("Szczepanski", "The parcel for Szczepanski is waiting at the front desk."),
    ("Ouagadougou", "Her flight to Ouagadougou was delayed by three hours."),
    ("mirtazapine", "The doctor switched her to mirtazapine last month."),
    ("Zabbix", "The alerts come from Zabbix whenever the disk fills up."),
    ("Thibodeaux", "Mister Thibodeaux wants the report by noon."),
    ("Yevtushenko", "We read a poem by Yevtushenko in class today."),
    ("Quetzaltenango", "They spent a week in Quetzaltenango learning Spanish."),
    ("Nimbrix", "The Nimbrix license expires at the end of the year."),
    ("Valcorda", "Valcorda makes the hinges for our kitchen cabinets."),
    ("Llanelli", "My grandfather worked in a steel mill in Llanelli."),
    ("Kozlowski", "Kozlowski fixed the leak under the sink."),
    ("Ngozi", "Ngozi is bringing dessert to the party."),
    ("Eberhardt", "Please forward the email to Eberhardt in accounting."),
    ("Trelvanix", "The Trelvanix sensor reports the temperature every minute."),
    ("olanzapine", "The pharmacy was out of olanzapine on Saturday."),
    ("Mbeki", "The interview with Mbeki ran for an hour."),
    ("Dziedzic", "Coach Dziedzic moved practice to Wednesday."),
    ("Ravensworth", "The wedding is at the Ravensworth hotel in May."),
    ("Kiptanui", "Kiptanui won the race by almost a minute."),
    ("Ostrowska", "Agnieszka Ostrowska will chair the next session."),
]

HELDOUT_OTHER_SENTENCES = [
    "The bus was late again, so I walked the last mile.",
    "Could you water the plants while I am away next week?",
    "We ordered pizza because nobody wanted to cook tonight.",
    "The printer on the second floor is out of paper.",
    "My sister is moving to a bigger flat in the autumn.",
    "Please close the window before you leave the office.",
    "The museum is free on the first Sunday of every month.",
    "He forgot his keys and had to wait for the landlord.",
    "The new bakery on the corner sells very good bread.",
    "I need to renew my passport before the summer holiday.",
    "The concert starts at eight, but the doors open at seven.",
    "Our neighbours are painting their fence bright blue.",
    "The dentist asked me to come back in six months.",
    "She plays the piano every evening after dinner.",
    "The river flooded the road after the heavy rain.",
    "We should leave early to avoid the traffic on Monday.",
    "The kids were tired after the long walk in the woods.",
    "I will send you the photos from the trip tomorrow.",
    "The shop around the corner closes at six on weekdays.",
    "Turn left at the church and the school is on your right.",
]
