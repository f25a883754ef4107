"""Transcripts of the bill simulator: from a kWh figure or from appliances, both languages.

Amounts follow the shipped (illustrative) tariff ``config/tariffs.yaml``: social band 0-150 kWh
at 91.17, 151-250 at 136.49, above at 149.06 XOF/kWh, fixed charge 1 000, VAT 18% except on
the social band, municipal tax 2.5%. ``tests/dialogs/test_tariffs.py`` checks the arithmetic.
"""

from __future__ import annotations

HOME_FR = ("CON ElecNet - 1000001\n1. Solde et factures\n2. Consommation\n3. Payer\n4. Panne/réclamation\n"
           "5. Suivi demande\n6. Délai de paiement\n7. Simulateur\n8. Préférences")
SIMULATOR_FR = ("CON Simulateur de facture:\n1. Je connais mes kWh par mois\n2. Calcul par appareils\n"
                "0. Retour 00. Accueil")
ASK_KWH_FR = "Consommation par mois en kWh (ex: 180):\n0. Retour 00. Accueil"
APPLIANCES_FR = ("CON Appareil:\n1. Frigo 150W\n2. Télévision 100W\n3. Ventilateur 60W\n"
                 "4. Éclairage (5 LED) 50W\n5. Fer à repasser 1200W\n6. Climatiseur 1500W\n7. Ordinateur 60W\n"
                 "0. Retour 00. Accueil")


def test_from_a_kwh_figure_in_french_with_the_details_and_a_wrong_entry_asked_again(phone):
    p = phone("+221770000001")
    assert p.dial() == HOME_FR
    assert p.answer("7") == SIMULATOR_FR
    assert p.answer("1") == "CON " + ASK_KWH_FR
    assert p.answer("beaucoup") == "CON Entrez un nombre de kWh de 1 à 10000 (ex: 180).\n" + ASK_KWH_FR
    assert p.answer("20000") == "CON Entrez un nombre de kWh de 1 à 10000 (ex: 180).\n" + ASK_KWH_FR
    result = p.answer("180")
    assert result == ("CON Pour 180 kWh par mois:\nFacture estimée 20 157 FCFA TTC\n(tarif domestique indicatif)\n"
                      "1. Détails\n2. Nouvelle simulation\n0. Retour 00. Accueil")
    # 150 x 91.17 = 13 676; 30 x 136.49 = 4 095; VAT 18% of (4 095 + 1 000) = 917;
    # municipal 2.5% of 18 771 = 469; total 13 676 + 4 095 + 1 000 + 917 + 469 = 20 157.
    assert p.answer("1") == ("CON Détail (FCFA):\n0-150 kWh: 13 676\n151-250 kWh: 4 095\n>250 kWh: 0\n"
                             "Prime fixe: 1 000\nTVA 18%: 917\nTaxe communale 2,5%: 469\nTotal: 20 157\n"
                             "0. Retour 00. Accueil")
    assert p.answer("0") == result
    assert p.answer("2") == SIMULATOR_FR


def test_a_decimal_figure_is_accepted_with_a_comma(phone):
    p = phone("+221770000001")
    p.dial("7")
    p.answer("1")
    assert p.answer("250,5").startswith("CON Pour 250,5 kWh par mois:\nFacture estimée 31 760 FCFA TTC")
    assert ">250 kWh: 75\n" in p.answer("1")    # 0.5 kWh x 149.06


def test_three_wrong_entries_end_the_session_politely(phone):
    p = phone("+221770000001")
    assert p.dial("7") == SIMULATOR_FR
    p.answer("1")
    p.answer("x")
    p.answer("-5")
    assert p.answer("1.2.3") == "END Trop d'erreurs. Session terminée, merci de réessayer."


def test_appliances_added_one_after_another_in_french(phone):
    p = phone("+221770000001")
    p.dial()
    p.answer("7")
    assert p.answer("2") == APPLIANCES_FR
    assert p.answer("1") == "CON Frigo: heures d'utilisation par jour (ex: 4):\n0. Retour 00. Accueil"
    assert p.answer("25") == ("CON Entrez un nombre d'heures de 0,1 à 24 (ex: 4).\n"
                              "Frigo: heures d'utilisation par jour (ex: 4):\n0. Retour 00. Accueil")
    assert p.answer("10") == ("CON Ajouté: Frigo 45 kWh/mois\nAppareils: 1, total 45 kWh/mois\n"
                              "1. Ajouter un appareil\n2. Calculer la facture\n0. Retour 00. Accueil")
    assert p.answer("1") == APPLIANCES_FR
    p.answer("2")                                          # TV 100 W
    assert p.answer("5,5") == ("CON Ajouté: Télévision 16,5 kWh/mois\nAppareils: 2, total 61,5 kWh/mois\n"
                               "1. Ajouter un appareil\n2. Calculer la facture\n0. Retour 00. Accueil")
    p.answer("1")
    p.answer("6")                                          # air conditioner 1 500 W
    assert p.answer("3").startswith("CON Ajouté: Climatiseur 135 kWh/mois\nAppareils: 3, total 196,5 kWh/mois")
    result = p.answer("2")
    assert result == ("CON Pour 196,5 kWh par mois:\nFacture estimée 22 871 FCFA TTC\n"
                      "(tarif domestique indicatif)\n1. Détails\n2. Nouvelle simulation\n0. Retour 00. Accueil")
    assert p.answer("1").startswith("CON Détail (FCFA):\n0-150 kWh: 13 676\n151-250 kWh: 6 347\n>250 kWh: 0\n")


def test_hours_corrected_after_going_back_replace_the_appliance_rather_than_add_it_again(phone):
    p = phone("+221770000001")
    p.dial("7")
    p.answer("2")
    p.answer("1")                                          # fridge
    assert p.answer("24").startswith("CON Ajouté: Frigo 108 kWh/mois\nAppareils: 1, total 108 kWh/mois")
    assert p.answer("0") == "CON Frigo: heures d'utilisation par jour (ex: 4):\n0. Retour 00. Accueil"
    assert p.answer("10").startswith("CON Ajouté: Frigo 45 kWh/mois\nAppareils: 1, total 45 kWh/mois")
    p.answer("1")
    p.answer("2")                                          # TV, then back to pick the fan instead
    assert p.answer("0") == APPLIANCES_FR
    p.answer("3")
    assert p.answer("5").startswith("CON Ajouté: Ventilateur 9 kWh/mois\nAppareils: 2, total 54 kWh/mois")
    p.answer("1")
    p.answer("1")                                          # a second fridge is a second one
    assert p.answer("10").startswith("CON Ajouté: Frigo 45 kWh/mois\nAppareils: 3, total 99 kWh/mois")
    assert p.answer("2").startswith("CON Pour 99 kWh par mois:")


def test_appliances_in_english_after_choosing_an_account(phone):
    p = phone("+221770000002")
    assert p.dial().startswith("CON Choose an account:")
    assert p.answer("3").startswith("CON ElecNet - 2000003")
    assert p.answer("7") == ("CON Bill simulator:\n1. I know my monthly kWh\n2. Work it out from appliances\n"
                             "0. Back 00. Home")
    assert p.answer("2") == ("CON Appliance:\n1. Fridge 150W\n2. TV 100W\n3. Fan 60W\n"
                             "4. Lights (5 LED) 50W\n5. Iron 1200W\n6. Air conditioner 1500W\n7. Computer 60W\n"
                             "0. Back 00. Home")
    assert p.answer("5") == "CON Iron: hours of use a day (e.g. 4):\n0. Back 00. Home"
    assert p.answer("0.5") == ("CON Added: Iron 18 kWh/month\nAppliances: 1, total 18 kWh/month\n"
                               "1. Add an appliance\n2. Work out the bill\n0. Back 00. Home")
    p.answer("1")
    p.answer("4")                                          # lights 50 W
    assert p.answer("6").startswith("CON Added: Lights (5 LED) 9 kWh/month\nAppliances: 2, total 27 kWh/month")
    # 27 x 91.17 = 2 462; VAT on the fixed charge only: 180; municipal 2.5% of 3 462 = 87.
    assert p.answer("2") == ("CON For 27 kWh a month:\nEstimated bill 3,729 FCFA incl. tax\n"
                             "(indicative residential tariff)\n1. Details\n2. New simulation\n0. Back 00. Home")


def test_entering_kwh_in_english(phone):
    p = phone("+221770000002")
    p.dial()
    p.answer("1")
    p.answer("7")
    assert p.answer("1") == "CON Monthly usage in kWh (e.g. 180):\n0. Back 00. Home"
    assert p.answer("lots") == ("CON Enter a number of kWh from 1 to 10000 (e.g. 180).\n"
                                "Monthly usage in kWh (e.g. 180):\n0. Back 00. Home")
    assert p.answer("0,4") == ("CON Enter a number of kWh from 1 to 10000 (e.g. 180).\n"
                               "Monthly usage in kWh (e.g. 180):\n0. Back 00. Home")
    # The social band only: no VAT on the energy (18% of the fixed charge: 180); municipal 2.5% of 14 676.
    assert p.answer("150") == ("CON For 150 kWh a month:\nEstimated bill 15,223 FCFA incl. tax\n"
                               "(indicative residential tariff)\n1. Details\n2. New simulation\n0. Back 00. Home")
    assert p.answer("1") == ("CON Details (FCFA):\n0-150 kWh: 13,676\n151-250 kWh: 0\nOver 250 kWh: 0\n"
                             "Fixed charge: 1,000\nVAT 18%: 180\nMunicipal tax 2.5%: 367\nTotal: 15,223\n"
                             "0. Back 00. Home")
