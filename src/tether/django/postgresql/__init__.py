"""``ENGINE: "tether.django.postgresql"``: Django's PostgreSQL backend on a tether pool."""
