"""``ENGINE: "tether.django.mysql"``: Django's MySQL/MariaDB backend on a tether pool (PyMySQL)."""
