"""Django system checks (``manage.py check``): ids ``smolqwery.E0xx``, each with a hint."""
