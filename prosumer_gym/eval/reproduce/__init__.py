"""Reproductions of the source papers' experiments, one module per paper or chapter:
``p2p_trading`` (dissertation ch. 5), ``p2p_recommendation`` (ch. 4), ``euber`` (ch. 6),
``storage_sharing`` (Tushar et al. 2016), ``prosumer_sharing`` (binary prosumption with
broadcast feedback), ``energy_collective`` (community ADMM market and P2P market). Each runs
as ``python -m prosumer_gym.eval.reproduce.<name>``; see docs/.
"""
