"""Analysis: power-law fits, findings and verdicts, Δ_MTL, reports, published reference tables and plots.
Imports the layers below; it trains and generates nothing."""
