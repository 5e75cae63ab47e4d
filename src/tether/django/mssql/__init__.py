"""``ENGINE: "tether.django.mssql"``: mssql-django's SQL Server backend on a tether pool."""
