"""OGC API - Features at /ogc (QGIS, GDAL's OAPIF driver)."""
