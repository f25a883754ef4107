"""The web page's own words (sign-in, buttons, errors) in French and English.

The dialogs' screens come from the menus file like on every channel; these are only the page
around them. ``{brand}`` and ``{help_line}`` are filled from the menus' ``brand:``.
"""

from __future__ import annotations

from typing import Final

__all__ = ["TEXTS", "text"]

TEXTS: Final[dict[str, dict[str, str]]] = {
    "fr": {
        "title": "{brand} - Espace client",
        "intro": "Votre compte d'électricité, sans USSD : solde, factures, paiement, pannes.",
        "sign_in": "Connexion",
        "phone_label": "Votre numéro de téléphone",
        "phone_hint": "Exemple : 77 000 00 01. Nous vous enverrons un code par SMS.",
        "send_code": "Recevoir un code par SMS",
        "code_heading": "Entrez le code reçu par SMS",
        "code_sent": "Si ce numéro peut recevoir des SMS, un code à 6 chiffres vient d'y être envoyé. "
                     "Il est valable {minutes} minutes.",
        "code_label": "Code à 6 chiffres",
        "sign_in_button": "Se connecter",
        "other_number": "Utiliser un autre numéro",
        "resend": "Recevoir un nouveau code",
        "bad_number": "Ce numéro n'est pas valide. Exemple : 77 000 00 01.",
        "foreign_number": "Le code ne s'envoie qu'aux numéros de notre pays. Exemple : 77 000 00 01.",
        "bad_code": "Le code est fait de 6 chiffres.",
        "wrong_code": "Code incorrect. Vérifiez le SMS et réessayez.",
        "expired_code": "Ce code n'est plus valable. Demandez-en un nouveau.",
        "throttled": "Trop d'essais. Réessayez dans quelques minutes.",
        "codes_busy": "Trop de codes demandés en ce moment : aucun code n'a été envoyé. Réessayez dans quelques "
                      "minutes, ou composez le code USSD depuis votre téléphone.",
        "unavailable": "Service momentanément indisponible. Réessayez dans un instant.",
        "signed_out": "Vous êtes déconnecté.",
        "timed_out": "Vous avez été déconnecté après une période d'inactivité. Reconnectez-vous.",
        "sign_out": "Se déconnecter",
        "signed_in_as": "Connecté : {number}",
        "answer_label": "Votre réponse",
        "secret_label": "Code secret (il ne sera pas affiché)",
        "send": "Valider",
        "choices": "Choix",
        "navigation": "Navigation",
        "pages": "Pages",
        "page_of": "Page {page} sur {pages}",
        "menu_again": "Retour au menu",
        "help": "Service client : {help_line}",
        "other_language": "English",
        "error_title": "Demande refusée",
        "not_found_title": "Page introuvable",
        "server_title": "Service indisponible",
        "error_back": "Retour à l'accueil",
        "bad_request": "Nous n'avons pas pu lire votre demande. Revenez à l'accueil et réessayez.",
        "csrf": "Ce formulaire a expiré ou ne vient pas de ce site. Revenez à l'accueil et réessayez.",
        "not_found": "Cette page n'existe pas.",
        "method": "Cette page ne s'utilise pas ainsi. Revenez à l'accueil.",
        "too_large": "Votre demande est trop longue.",
        "server": "Un problème est survenu de notre côté. Réessayez dans un instant.",
        "unsub_title": "Se désabonner des e-mails",
        "unsub_question": "Ne plus recevoir {topic} à l'adresse {address} ?",
        "unsub_sms": "Les messages concernés vous parviendront par SMS.",
        "unsub_button": "Ne plus recevoir ces e-mails",
        "unsub_all_button": "Ne plus recevoir aucun e-mail",
        "unsub_done": "C'est fait : vous ne recevrez plus {topic} à l'adresse {address}.",
        "unsub_again": "Pour en recevoir à nouveau, confirmez votre adresse dans le menu Préférences (*123#) "
                       "ou envoyez EMAIL suivi de l'adresse par SMS.",
        "unsub_invalid_title": "Lien non valide",
        "unsub_invalid": "Ce lien de désabonnement n'est pas valide. Utilisez le lien complet de l'e-mail reçu.",
    },
    "en": {
        "title": "{brand} - Customer space",
        "intro": "Your electricity account without USSD: balance, bills, payment, outages.",
        "sign_in": "Sign in",
        "phone_label": "Your phone number",
        "phone_hint": "Example: 77 000 00 01. We will send you a code by SMS.",
        "send_code": "Send me a code by SMS",
        "code_heading": "Enter the code we sent by SMS",
        "code_sent": "If this number can receive SMS, a 6-digit code has just been sent to it. "
                     "It is valid for {minutes} minutes.",
        "code_label": "6-digit code",
        "sign_in_button": "Sign in",
        "other_number": "Use another number",
        "resend": "Send me a new code",
        "bad_number": "This number is not valid. Example: 77 000 00 01.",
        "foreign_number": "Codes are sent to numbers of our country only. Example: 77 000 00 01.",
        "bad_code": "The code is 6 digits.",
        "wrong_code": "Wrong code. Check the SMS and try again.",
        "expired_code": "This code no longer works. Ask for a new one.",
        "throttled": "Too many attempts. Please try again in a few minutes.",
        "codes_busy": "Too many codes are being asked for right now: no code was sent. Please try again in a few "
                      "minutes, or dial the USSD code from your phone.",
        "unavailable": "Service temporarily unavailable. Please try again shortly.",
        "signed_out": "You are signed out.",
        "timed_out": "You were signed out after a period of inactivity. Please sign in again.",
        "sign_out": "Sign out",
        "signed_in_as": "Signed in: {number}",
        "answer_label": "Your answer",
        "secret_label": "Secret code (it will not be shown)",
        "send": "Send",
        "choices": "Choices",
        "navigation": "Navigation",
        "pages": "Pages",
        "page_of": "Page {page} of {pages}",
        "menu_again": "Back to the menu",
        "help": "Customer service: {help_line}",
        "other_language": "Français",
        "error_title": "Request refused",
        "not_found_title": "Page not found",
        "server_title": "Service unavailable",
        "error_back": "Back to the start",
        "bad_request": "We could not read your request. Go back to the start and try again.",
        "csrf": "This form has expired or does not come from this site. Go back to the start and try again.",
        "not_found": "This page does not exist.",
        "method": "This page is not used that way. Go back to the start.",
        "too_large": "Your request is too long.",
        "server": "Something went wrong on our side. Please try again shortly.",
        "unsub_title": "Unsubscribe from e-mails",
        "unsub_question": "Stop {topic} to {address}?",
        "unsub_sms": "Those messages will reach you by SMS.",
        "unsub_button": "Stop these e-mails",
        "unsub_all_button": "Stop all e-mails",
        "unsub_done": "Done: {topic} to {address} are stopped.",
        "unsub_again": "To get them again, confirm your address in the Preferences menu (*123#) "
                       "or send EMAIL followed by the address by SMS.",
        "unsub_invalid_title": "Link not valid",
        "unsub_invalid": "This unsubscribe link is not valid. Use the whole link of the e-mail you received.",
    },
}


def text(language: str, key: str, **values: str) -> str:
    """The page's word ``key`` in ``language`` (French when the language has none), filled."""
    raw = TEXTS.get(language, TEXTS["fr"]).get(key) or TEXTS["fr"][key]
    return raw.format(**values) if values else raw
