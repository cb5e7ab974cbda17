"""DCAT-AP catalogue of published datasets: model, RDF graph, SHACL shapes, harvester.

Pure: no database, no web framework. The open-data publications feed ``model.Catalogue``;
``graph`` serialises it (JSON-LD, Turtle) and checks it against the project's DCAT-AP shapes;
``schema`` writes each dataset's Table Schema; ``harvest`` reads a catalogue back the way
udata (data.gouv.fr) does.
"""
