use serde_json::json;

use super::*;

fn s(text: &str) -> PyValue {
    PyValue::Str(text.into())
}

fn big(digits: &str) -> PyValue {
    PyValue::BigInt(digits.into())
}

fn f(bits: u64) -> PyValue {
    PyValue::Float(f64::from_bits(bits))
}

fn d(items: Vec<(&str, PyValue)>) -> PyValue {
    PyValue::Dict(items.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

fn json_of(value: &PyValue) -> String {
    let mut out = String::new();
    value.write_django_json(&mut out);
    out
}

fn repr(x: f64) -> String {
    let mut out = String::new();
    python_float_repr(x, &mut out);
    out
}

// The vectors below are CPython 3.11's output: `json.dumps(v, separators=(",", ":"))`,
// `json.loads` accepting or raising, and `repr(float)`.

const ROUND_TRIP: &[&str] = &[
    "null",
    "true",
    "false",
    "0",
    "1",
    "-1",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "-18446744073709551616",
    "1180591620717411303424",
    "1000000000000000000000000000000",
    "-10000000000000000000000000000000000000000",
    "24197857161011715162171839636988778104",
    "0.1",
    "1e+16",
    "-0.0",
    "0.0",
    "NaN",
    "Infinity",
    "-Infinity",
    "5e-324",
    "1.7976931348623157e+308",
    "1e-07",
    "123.0",
    "0.0001",
    "1e-05",
    "1.5e+300",
    "123456789012345.6",
    "1234567890123456.8",
    "-111275153569243.12",
    "\"\"",
    "\"plain\"",
    "\"\\u00e9\"",
    "\"\\ud83d\\ude00\"",
    "\"\\u0000\\u0001\\u001f\\u007f\\u0080\\u009f\"",
    "\"\\\"\\\\/\\n\\r\\t\\b\\f\"",
    "\"\\u2028\\u2029\\ufeff\"",
    "\"\\ud7ff\\ue000\\uffff\"",
    "\"\\udbff\\udfff\"",
    "\"mixed ascii \\u00e9 \\ud83d\\ude00 text\"",
    "\"\\u03a9\\u2248\\u00e7\\u221a\\u222b\\u02dc\\u00b5\\u2264\\u2265\\u00f7\"",
    "\"\\u0100\\u07ff\\u0800\"",
    "[]",
    "{}",
    "[[]]",
    "[{}]",
    "{\"\":\"\"}",
    "{\"a\":[]}",
    "{\"_auth_user_id\":\"42\",\"_auth_user_backend\":\"django.contrib.auth.backends.ModelBackend\",\"_auth_user_hash\":\"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\",\"_session_expiry\":1209600,\"cart\":[{\"id\":1180591620717411303424,\"qty\":3,\"price\":19.99,\"tags\":[\"a\",\"\\u00e9\"]}],\"n\":null,\"t\":true,\"f\":false,\"nan\":NaN,\"ninf\":-Infinity,\"\\u043a\\u043b\\u044e\\u0447\":\"\\u0437\\u043d\\u0430\\u0447\\u0435\\u043d\\u0438\\u0435\",\"\\ud83d\\ude00\":{\"deep\":[[[1,[2.5,[3]]]]]}}",
    "{\"z\":1,\"a\":2,\"m\":{\"y\":1,\"b\":2}}",
    "[-4511243184718316475,-2609559196002828135,3513124226084228663,6299765331246476266,2804489806378827305,554137530599832992,6278314744523580143,5090537039564311515]",
    "[0.1399601630397701,1.01853664031722e-244,2.9704598186234577e-115,3.0534183338726823e+150,-2.3027782228163463e+146,3.56409621163656e+161,6.352929017207453e-183,0.3146575865605324,-1.2761724801771812e-23,2.0868668176225336e+195,3.66898827745704e-84,-1.389122273370197e+145]",
    "{\"key0\":0,\"key1\":1,\"key2\":2,\"key3\":3,\"key4\":4,\"key5\":5,\"key6\":6,\"key7\":7,\"key8\":8,\"key9\":9,\"key10\":10,\"key11\":11,\"key12\":12,\"key13\":13,\"key14\":14,\"key15\":15,\"key16\":16,\"key17\":17,\"key18\":18,\"key19\":19,\"key20\":20,\"key21\":21,\"key22\":22,\"key23\":23,\"key24\":24,\"key25\":25,\"key26\":26,\"key27\":27,\"key28\":28,\"key29\":29,\"key30\":30,\"key31\":31,\"key32\":32,\"key33\":33,\"key34\":34,\"key35\":35,\"key36\":36,\"key37\":37,\"key38\":38,\"key39\":39}",
    "{\"deep127\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[0]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
];
const PARSE: &[(&str, &str)] = &[
    (
        " { \"a\" : [ 1 , 2.50 , -0 , 1E5 , 1e-5 , 0.1e1 , -0.0 ] , \"b\" : \"\\u00E9\\ud83d\\ude00\\/\" } ",
        "{\"a\":[1,2.5,0,100000.0,1e-05,1.0,-0.0],\"b\":\"\\u00e9\\ud83d\\ude00/\"}",
    ),
    ("\t\n\r 1 \t\n\r", "1"),
    ("1e400", "Infinity"),
    ("-1e400", "-Infinity"),
    ("1e-400", "0.0"),
    ("-1e-400", "-0.0"),
    ("{\"a\":1,\"b\":2,\"a\":3}", "{\"a\":3,\"b\":2}"),
    (
        "{\"a\":1,\"a\":{\"x\":1},\"b\":0,\"a\":[]}",
        "{\"a\":[],\"b\":0}",
    ),
    (
        "123456789012345678901234567890",
        "123456789012345678901234567890",
    ),
    ("-9223372036854775809", "-9223372036854775809"),
    ("-9223372036854775808", "-9223372036854775808"),
    ("9223372036854775808", "9223372036854775808"),
    ("\"\\u0000\"", "\"\\u0000\""),
    ("0.30000000000000004", "0.30000000000000004"),
    ("2.5e-3", "0.0025"),
    (
        "1.00000000000000011102230246251565404236316680908203125",
        "1.0",
    ),
    ("1.0000000000000001", "1.0"),
    ("9007199254740993", "9007199254740993"),
    ("9007199254740993.0", "9007199254740992.0"),
    ("[NaN,Infinity,-Infinity]", "[NaN,Infinity,-Infinity]"),
    (
        "0.1111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111",
        "0.1111111111111111",
    ),
    (
        "100000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000.0",
        "Infinity",
    ),
    (
        "\"é😀 raw non-ASCII\"",
        "\"\\u00e9\\ud83d\\ude00 raw non-ASCII\"",
    ),
    ("\"\\u00e9\\u00E9\"", "\"\\u00e9\\u00e9\""),
    ("[[],{},[{}]]", "[[],{},[{}]]"),
    ("{\"\\u0061\":1,\"a\":2}", "{\"a\":2}"),
    ("1E+2", "100.0"),
    ("1e-0", "1.0"),
    ("-0", "0"),
    ("0", "0"),
    (
        "\"\\ud83d\\ude00\\ud83d\\ude00\"",
        "\"\\ud83d\\ude00\\ud83d\\ude00\"",
    ),
    (
        "{\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k9\":9,\"k10\":10,\"k11\":11,\"k12\":12,\"k13\":13,\"k14\":14,\"k15\":15,\"k16\":16,\"k17\":17,\"k3\":\"three\",\"k16\":\"sixteen\",\"k0\":\"zero\"}",
        "{\"k0\":\"zero\",\"k1\":1,\"k2\":2,\"k3\":\"three\",\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k9\":9,\"k10\":10,\"k11\":11,\"k12\":12,\"k13\":13,\"k14\":14,\"k15\":15,\"k16\":\"sixteen\",\"k17\":17}",
    ),
    (
        "{\n  \"x\": [\n    1,\n    {\n      \"y\": \"\\u00e9\"\n    }\n  ]\n}",
        "{\"x\":[1,{\"y\":\"\\u00e9\"}]}",
    ),
    (
        "{\n\t\"x\": [\n\t\t1,\n\t\t{\n\t\t\t\"y\": \"é\"\n\t\t}\n\t]\n}",
        "{\"x\":[1,{\"y\":\"\\u00e9\"}]}",
    ),
];
/// Python refuses these too.
const ERRORS: &[&str] = &[
    "",
    " ",
    "{",
    "[",
    "\"abc",
    "{\"a\":",
    "{\"a\":1",
    "[1,2",
    "{}x",
    "1 2",
    "[1,]",
    "{\"a\":1,}",
    "01",
    "1.",
    "-",
    "--1",
    "+1",
    ".5",
    "1e",
    "nan",
    "NAN",
    "inf",
    "-NaN",
    "Infinity1",
    "tru",
    "nul",
    "True",
    "None",
    "\"\u{1}\"",
    "\"\u{1f}\"",
    "\"a\nb\"",
    "\u{feff}{}",
    "\"\\x\"",
    "\"\\u12\"",
    "\"\\u12G4\"",
    "\"\\U0041\"",
    "'a'",
    "{\"a\" 1}",
    "{\"a\":1 \"b\":2}",
    "{1:2}",
    "{a:1}",
    "[1 2]",
    "\"\\",
    "\"\\u",
    "\"\\ud83d\\u12\"",
    "//",
    "[1]]",
    "\u{c}1",
    " 1",
];
/// Python reads these; a Rust String cannot hold a lone surrogate, and nesting is bounded.
const OUR_REFUSALS: &[&str] = &[
    "\"\\ud800\"",
    "\"\\udc00\"",
    "\"\\ud800\\u0041\"",
    "\"x\\udfff\"",
    "[\"\\ud83d\"]",
    "{\"\\ud83d\":1}",
    "\"\\ud83d\\ud83d\"",
];

const FLOAT_REPRS: &str = "\
    0000000000000000 0.0  8000000000000000 -0.0  0000000000000001 5e-324 \
    8000000000000001 -5e-324  7fefffffffffffff 1.7976931348623157e+308  ffefffffffffffff -1.7976931348623157e+308 \
    0010000000000000 2.2250738585072014e-308  000fffffffffffff 2.225073858507201e-308  3fb999999999999a 0.1 \
    3fc999999999999a 0.2  3fd3333333333334 0.30000000000000004  4341c37937e08000 1e+16 \
    430c6bf526340000 1000000000000000.0  4341c37937e07fff 9999999999999998.0  42dc12218377de66 123456789012345.6 \
    43118b54f22aeb03 1234567890123456.8  4340000000000000 9007199254740992.0  3f1a36e2eb1c432d 0.0001 \
    3ee4f8b588e368f1 1e-05  3f202e4b6ce5dc68 0.00012345  3ee4f8b588e368f1 1e-05 \
    7e41eb2d66005835 1.5e+300  405ec00000000000 123.0  3ff0000000000000 1.0 \
    bff0000000000000 -1.0  4004000000000000 2.5  3fd5555555555555 0.3333333333333333 \
    3fe5555555555555 0.6666666666666666  4480f0cf064dd592 1e+22  44b52d02c7e14af6 1e+23 \
    3e7ad7f29abcaf48 1e-07  4059000000000000 100.0  54b249ad2594c37d 1e+100 \
    41678c29dccccccd 12345678.9  3f50624dd2f1a9fc 0.001  4011666666666666 4.35 \
    4005666666666666 2.675  444b1ae4d6e2ef50 1e+21  43438a388a43c000 1.1e+16 \
    4340e0198eaee000 9500000000000000.0  3fb9999999999999 0.09999999999999999  42decdab3ce662d8 135474760096139.38 \
    42d867908bdae698 107332343131034.38  c2d94d11000d76c8 -111275153569243.12  c31c616fa030f065 -1997107851181081.2 \
    c303d223aaf9fe06 -697384398962624.8  431d3a120ea6a5e9 2056655888558458.2  42bbf8d3538522f0 30755511305506.938 \
    430e5e168b70d386 1068462527879792.8  431402b467596e55 1408118346374037.2  431a07afdba69679 1831700320069022.2 \
    c3170a14bea88b13 -1621252169671364.8  42e78a5483966b9c 207063126684508.88  c30a3ce7dc44120e -923164490629697.8 \
    42e0b9b0d14bb1d4 147117772004750.62  43160d95e0e56a41 1551846715513488.2  c3124133c95d63fb -1284560064567550.8 \
    431d1eba8fad9477 2049140236969245.8  4318de342f0a3257 1749928787479701.8  430a008680a2216e 914865884775469.8 \
    c315a728ee4a9237 -1523692187329677.8  c31308a378b0deb3 -1339380688762796.8  4310426fd52c2325 1144161928153289.2 \
    430f19aceae2b276 1094244342978126.8  4309690f485d3872 894048597157646.2  c3140e7150e80735 -1411344846422477.2 \
    431894b2ded31427 1729723851130121.8  4310f6cd3a90b031 1193740234664972.2  c2d3190263227608 -83992540645848.12 \
    43005c746f8c2c4a 575656848098697.2  c2a57de6eb0948a0 -11815244629156.312  c2e7acbd1159e624 -208245390757681.12 \
    c319019b48a54ed5 -1759660217029557.2  c306e3809ff900d6 -805323883356186.8  c30ed3fa076658de -1084665015094043.8 \
    43128840dc7eb8df 1304090434842167.8  c30b665a2a3bcec6 -964045226605016.8  c316a0dfd946ccad -1592333192770347.2 \
    c2b4ecb2e2c35f50 -23006846042975.312  42e82577d53c5dcc 212393626559214.38  c3040e5308494d76 -705656164788654.8 \
    c5c4eedec873cf1d -1.295695320909623e+28  3f840fba138d12ec 0.009795621606494241  55ee444d58d55ca9 8.677109485785127e+105 \
    3fe265e02b167d29 0.5749359933433073  c067f9374bc6a7f0 -191.788  3c25b5fb5a9a5846 5.884742185302886e-19 \
    622da553554da6cb 8.535930318723973e+164  c051e94acaff6d33 -71.64519  408a83aceee0f3cb 848.45944 \
    7e8705d5817f83a6 3.0836395840227574e+301  30401351d84ad22a 2.776608956591366e-76  c306acc90a0aa906 -797803618063648.8 \
    6762aea538835de6 1.0404842187556153e+190  408dcfb987c6327f 953.965591  4122542ecf505ba4 600599.4049099577 \
    f259640cd4f35cb9 -6.772254381833381e+242  583f0ff15f9794bf 1.2239160235741346e+117  ecf2c3aa18d96901 -6.468589513886093e+216 \
    4070a5ba8826aa8f 266.35804  c12b293ff8006980 -890015.9843781441  4c882bb83e064ea5 4.855118255561216e+60 \
    e195768d0b8b6c52 -1.2070073777880192e+162  9d0d5a78cf8167d2 -9.722343063725182e-169  c22ecf8aff1ae71f -66165505933.45141 \
    40788fd70a3d70a4 392.99  75f0e84a446f0c79 1.2997884326449734e+260  c0f504514794eb58 -86085.0799760049 \
    408393d916872b02 626.481  2756f1ea75f6bacc 3.554262355869195e-119  c125a7493eb07991 -709540.6224401464 \
    6bbc7643ce47e08c 9.357115090735015e+210  411678154c1f7714 368133.32433878  411ff2a10b38d270 523432.2609589463 \
    c044d9999999999a -41.7  408074358afc47e5 526.526144  355b88c54be27fe4 1.1498843717967554e-51 \
    c083d80000000000 -635.0  c1246f3087e42720 -669592.265412543  c125fc02a14da2a7 -720385.3150454358 \
    012227b26f840c08 3.309270121064778e-303  72af63ba447f7987 2.6791173833403154e+244  35d810edeaf08e51 2.5729241548754288e-49 \
    406752a8c154c986 186.5831  c086d80000000000 -731.0  803d40937e6a184e -1.627210451527924e-307 \
    97b66b4c128296f5 -1.9194710031766705e-194  411b08e281b69b40 442936.6266731508  c181be464eda27f1 -37210313.856521495 \
    411b05940c5532ec 442725.01204375806  0a069bedf1503da6 2.2976137617659794e-260  c0f3b085f7416139 -80648.37286508539 \
    5165ed216879f963 1.3311101087887126e+84  4083e81d53cddd6e 637.01432  c2e98414b7217149 -224440591387530.28 \
    bf4dab2bdd036289 -0.0009054149795942472  2666d9139fa3be1c 1.080087993724808e-123  cdf1c81ca6e1b62f -2.9962083648481496e+67 \
    c12788f022d17dbf -771192.068004541  c0809be3886594af -531.4861  c051cccccccccccd -71.2 \
    2a5a8d197668422c 1.157671061680037e-104  4726faf9297e22f2 5.966043697126013e+34  9ec380e57bcccce3 -1.7340631567918923e-160 \
    4082749fbe76c8b4 590.578  c077cafd89d1bd05 -380.6868990128426  473691d4764f26ab 1.1718831326566763e+35 \
    41429c9bde81c979 2439479.738335785  d2303b4d5cc8a53b -8.072376315944083e+87  411923acd12c3a64 411883.20427027927 \
    da063f9445a9f92e -4.706370772420939e+125  c104a539eab07df4 -169127.23959444428  bfea2cdfff817c83 -0.8179779043529297 \
    c11f327788a853c3 -511133.8834546173  c085ed47ae147ae1 -701.66  bfe013339c0155b4 -0.5023439452149234 \
    55433f8a117c2bf1 5.38888198470479e+102  412147d2d69f8588 566249.4191858033  bfc7920029ef7d61 -0.18414308593399212 \
    407862dc5d638866 390.1788  412b0841cf465af8 885792.9048336437  c3aa3ae423a39ef2 -9.450369176777178e+17 \
    975c8f06a03bb0e4 -3.820508689886867e-196  6b73b711f45da868 4.0509452536964375e+209  c121037d77dea576 -557502.7341205317 \
    57e7e3164c3edf3f 2.941243894552758e+115  c0546c0956c0d6f5 -81.68807  40531147ae147ae1 76.27 \
    5a7f76dabb0a624c 8.51953534363532e+127  105b2d8b243cf64d 7.0022770147213535e-230  4123c989e9058804 648388.9551203256 \
    c416adda759536b0 -1.0458895605470567e+20  c123785c88dcd438 -637998.2673097914  41108c757b64384c 271133.3704994961 \
    42a09e781612eb09 9136402794869.518  b4bd8c63bea5a42c -1.205076792869111e-54  412c00246cea8496 917522.2127267297 \
    41837ea0acb5eeff 40883221.588834755  a8031337effbbdd1 -6.051428001040196e-116  c0789b851eb851ec -393.72 \
    9a4082043968f06f -3.108020360115526e-182  04f174ae44951a28 7.336745810357523e-285  4101de8ee78fd700 146385.86306732148 \
    c069000000000000 -200.0  b8c1c30fa4c0593c -2.672522322446842e-35  c11236997e6f7128 -298406.37347199256 \
    9e80f2383a19e63f -9.416812162438714e-162  48855141a4f0487d 2.3212601656468668e+41  c12983b921544439 -836060.5650960273 \
    41836b89131ca7b3 40726818.388991736  c081e57c84b5dcc6 -572.6858  bedb2e5dea1a8c67 -6.480484133017297e-06 \
    7ff0000000000000 inf  408c418e8a71de6a 904.1946  7defadab45bc1208 4.143514714286144e+298 \
    bf3d498365c5f2f6 -0.0004468866152576434  40ffeec69adc6250 130796.41280783084  422e2796256ab085 64756585141.344765 \
    c07cd741f212d773 -461.4536  411a7c6643ee9bf4 433945.56633990933  c1968b3d4b4bb51d -94555986.82393308 \
    837a28f85187619f -6.553640317366675e-292  be629f9db86ba8de -3.468897262998654e-08  4114e79d6d212410 342503.3565717349 \
    60577bcff6fec939 1.2594566479464944e+156  c1f200750a9248e7 -4832317609.142798  c088e66872b020c5 -796.801 \
    40783501a36e2eb2 387.3129  c12e7c0664405dbb -998915.1958035746  c0f48ee7e013ee38 -84206.49220650725 \
    141aa3b3bfb6f81d 7.913133685769109e-212  40773e8f5c28f5c3 371.91  7853c2f3dfbdc1ab 4.1759640768233455e+271 \
    c11fe5ce881e18f7 -522611.6329273129  6889fffc43e306d5 3.7959422736071617e+195  c1284660811d27f0 -795440.2521755677 \
    c0fe8ef0d9f65140 -125167.05321342219  c083800000000000 -624.0  2f982a547a96cd06 2.03804735485454e-79 \
    9825f9ff051d5a34 -2.4084201185200077e-192  412be08fe1a94575 913479.9407445627  408cb48ae0d62c7c 918.5678116543127 \
    7fd912d11c46660e 7.042885109288252e+307  412916fea823918a 822143.3283963662  401f3e9bed77b3da 7.81114169161898 \
    c121703dd1b5e2f1 -571422.9095908088  411d5f4a636c8f7c 481234.5970938129  c2557fe6952025ad -369360524416.5887 \
    c6ae6f5706029069 -3.0864677330507573e+32  40f467c57dcca000 83580.34321272373  412ae7f42c686bbc 881658.0867341678 \
    bf429ca9b8544d22 -0.0005679920874705239  c273584c4c1a34ac -1329372381603.292  6df08ca584d03909 3.738859067937561e+221 \
    0ac4d3891bcf49d0 8.668941132849033e-257  407eb8dc91d14e3c 491.55385  408e798f5c28f5c3 975.195 \
    9e220ad21246480e -1.5665472231626986e-163  8bb08f7aca4207c9 -2.258791952324451e-252  c1263fc2213f3226 -729057.0649352714 \
    a2c73df03c0ecc54 -3.811926758679595e-141  4084a00000000000 660.0  c63c0b788b69303a -2.2219386149551143e+30 \
    40d64ba86066b6fc 22830.630883864113  c304ad0a86d6fdf9 -727470032215999.1  c1314de7a5821901 -1134055.646516383 \
    473e77899701108a 1.5819341349066734e+35  c0dc1c6f43e08967 -28785.738517889196  96b33f89b2a7be05 -2.5146230119387574e-199 \
    3fc9127e2c213788 0.19587685732625126  bfd617a25717552a -0.3451925135135122  40814770a3d70a3d 552.93 \
    4070200000000000 258.0  412c24707926b872 922168.2366235389  148842cc27147852 9.224448978656424e-210 \
    191bbea1ec27b83d 9.963274455880497e-188  c07ceed176145953 -462.926138  40c34218579134df 9860.190172339264 \
    bfeb60ce5faeb45f -0.8555671566770221  d195fe67d61430dc -1.0681654130673554e+85  bfb3c44c38d89543 -0.07721401584475011 \
    583f9cb0509a0ab4 1.2455787948453515e+117  4141bc17db1dac2b 2324527.711843034  408d040000000000 928.5 \
    405c22f694467382 112.5463  c117fcd589f306ea -393013.38471613696  300569e18dce5588 2.3116430136634434e-77 \
    412e1e1d2bce4a0c 986894.585558237  c05683b9b66f9336 -90.05821  b0567a69bbfb8c32 -7.76501262756182e-76 \
    407f3ad45b7b407e 499.676845056012  41293173f2933ff6 825529.9737796772  d771f65bba5842ea -1.727910449108135e+113 \
    3d3c25c268497682 1e-13  39b57a8ea7a4ad52 1.0589836050099961e-30  14fa07aa222a0199 1.266823654088686e-207 \
    174825281f615dd7 1.6150375730904267e-196  c17f8c5dcaed67fe -33080796.682960503  7f4b8e233cae25c8 1.5117138405054024e+305 \
    985d1205f5f76dd3 -2.5486712828576336e-191  c05ffe5604189375 -127.974  c33b18b40e0c444f -7626985980052559.0 \
    854dbbf2d8ce38ab -3.9991709751315575e-283  40b1842ca32d456a 4484.174364880988  408111999999999a 546.2 \
    410097e0be312720 135932.0928671891  bda5b5e2ef63228d -9.872789635173778e-12  311c707cb3d6de04 4.024032891136223e-72 \
    4ebded0e4b564909 2.0654165678098998e+71  1515a19da9ccbae6 4.211005932799692e-207  ce48635cb7bc6649 -1.3150055574877723e+69 \
    c08e6cb851eb851f -973.59  40f080f6dd59e93d 67599.42904082402  8f29e6609698b969 -1.2727751307031934e-235 \
    4182d9e61989a1b3 39533763.19220295  406d40e44fa05144 234.02787  4417dd120ebd03e6 1.1005123118306489e+20 \
    c122441c72b17824 -598542.2240102333  bbffcb2e96ef589d -1.0772117671443614e-19  426a18008b73b423 896574708637.6293 \
    c052531bcb6b62ce -73.29857144820127  432c497e72ec4def 3981053395347191.5  411ddb867a77fd74 489185.6195983507 \
    c089480000000000 -809.0  40e035df8014a990 33198.98438485258  c04061dfd8db9bcb -32.764643771391626 \
    c0d2067ec3f90de0 -18457.980711234617  cac05a6070df2932 -1.2236792868209357e+52  c05d400000000000 -117.0 \
    40f76d38f4632520 95955.55966486456  412ac097bd5f9006 876619.8698697097  c21476b752a6f599 -21972767913.73984 \
    4089b4cccccccccd 822.6  c0596dd41743e964 -101.71607  c074f80000000000 -335.5 \
    c1b873716ac6bc19 -410218858.77630764  c10edd66b8c34d98 -252844.8402162611  c08db1999999999a -950.2 \
    40f09fa65a83d390 68090.39709837572  42a0c93cc7e574c6 9228247102138.387  c333b1c55304c279 -5543485616996985.0 \
    263ff34c4dee20c2 1.8879821033629726e-124  407a897381d7dbf5 424.5907  c0449edfa43fe5c9 -41.2412 \
    40bd5f70785d6165 7519.439336620596  d06fed54e0ab69cc -2.9575223017895615e+79  f1202b998e25f3fa -8.22630863820973e+236 \
    d73805afbf2d509b -1.4442800641510784e+112  f85e03d0fa5c29de -6.3426845940745114e+271  c087172c0724b76f -738.896498 \
    1d6f7ead718472a1 6.67623690782451e-167  3b22f4be3c7a645e 7.840029333123111e-24  65fe89897ba5370e 2.0274369793710168e+183 \
    c0f2a085e769c990 -76296.36899737106  825a8f1c6063bdd6 -2.538145116218138e-297  48b5f3fc4e4779a7 1.9123819916325354e+42 \
    2017a69d4ad48431 4.4099001331323714e-154  40b16bb6910e5a03 4459.713150879837  ed674d35e0bc7074 -1.028188330502001e+219 \
    410a7b22a0401088 216932.32824719348  2d1337d507c79a3d 1.47411595811305e-91 \
";

fn structures() -> Vec<(&'static str, PyValue)> {
    vec![
        (
            "{\"a\":1,\"b\":2,\"a\":3}",
            d(vec![("a", PyValue::Int(3)), ("b", PyValue::Int(2))]),
        ),
        (
            "[1,-0,-0.0,1e400,123456789012345678901234567890,-9223372036854775809,NaN]",
            PyValue::List(vec![
                PyValue::Int(1),
                PyValue::Int(0),
                f(0x8000000000000000),
                f(0x7ff0000000000000),
                big("123456789012345678901234567890"),
                big("-9223372036854775809"),
                f(0x7ff8000000000000),
            ]),
        ),
        (
            "{\"s\":\"\\u00e9\\ud83d\\ude00\\n\\\"\\\\\\/\",\"e\":{},\"l\":[[],null,true,false]}",
            d(vec![
                ("s", s("é😀\n\"\\/")),
                ("e", d(vec![])),
                (
                    "l",
                    PyValue::List(vec![
                        PyValue::List(vec![]),
                        PyValue::None,
                        PyValue::Bool(true),
                        PyValue::Bool(false),
                    ]),
                ),
            ]),
        ),
    ]
}

#[test]
fn python_output_round_trips_byte_for_byte() {
    for &text in ROUND_TRIP {
        let value = parse_django_json(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(json_of(&value), text);
    }
    // Python's longest ints (4300 digits, its limit); one more digit and it refuses.
    let nines = "9".repeat(MAX_INT_DIGITS);
    for text in [format!("[{nines},-{nines}]"), format!("-{nines}")] {
        assert_eq!(json_of(&parse_django_json(&text).unwrap()), text);
    }
    for text in [
        "1".repeat(4301),
        format!("-{}", "1".repeat(4301)),
        format!("[{}]", "1".repeat(4301)),
    ] {
        assert!(parse_django_json(&text).is_err());
    }
    // Python's float() of a long literal: correctly rounded.
    let long = format!("0.{}", "1".repeat(800));
    assert_eq!(
        json_of(&parse_django_json(&long).unwrap()),
        "0.1111111111111111"
    );
    let long = format!("-{}.5e-990", "1".repeat(1000));
    assert_eq!(
        json_of(&parse_django_json(&long).unwrap()),
        "-1111111111.1111112"
    );
}

#[test]
fn parses_what_python_parses_and_writes_what_it_writes() {
    for &(input, python) in PARSE {
        let value = parse_django_json(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(json_of(&value), python, "{input:?}");
    }
}

#[test]
fn builds_python_values() {
    for (input, expected) in structures() {
        let value = parse_django_json(input).unwrap();
        assert!(value.identical(&expected), "{input}: {value:?}");
    }
}

#[test]
fn refuses_what_python_refuses() {
    for &input in ERRORS {
        assert!(parse_django_json(input).is_err(), "{input:?} parsed");
    }
}

#[test]
fn refuses_lone_surrogates_and_deep_nesting() {
    for &input in OUR_REFUSALS {
        let error = parse_django_json(input).unwrap_err();
        assert!(error.message().contains("surrogate"), "{input:?}: {error}");
    }
    for open in ["[", "{\"a\":"] {
        let close = if open == "[" { "]" } else { "}" };
        let ok = format!("{}1{}", open.repeat(MAX_DEPTH), close.repeat(MAX_DEPTH));
        assert!(parse_django_json(&ok).is_ok());
        let deep = format!(
            "{}1{}",
            open.repeat(MAX_DEPTH + 1),
            close.repeat(MAX_DEPTH + 1)
        );
        let error = parse_django_json(&deep).unwrap_err();
        assert_eq!(error.message(), "nested too deeply");
        // serde_json's limit is the same, so what is read here reads as serde_json too.
        assert!(serde_json::from_str::<Value>(&ok).is_ok());
        assert!(serde_json::from_str::<Value>(&deep).is_err());
    }
    // Hostile depth is refused without recursing into it.
    assert!(parse_django_json(&"[".repeat(1_000_000)).is_err());
}

#[test]
fn errors_say_where() {
    let error = parse_django_json(r#"{"a":1}x"#).unwrap_err();
    assert_eq!(error.offset(), 7);
    assert_eq!(
        error.to_string(),
        "invalid Django JSON at byte 7: extra data after the value"
    );
    assert_eq!(parse_django_json(r#"{"a":tru}"#).unwrap_err().offset(), 5);
}

#[test]
fn float_repr_is_pythons() {
    let mut pairs = FLOAT_REPRS.split_whitespace();
    let mut n = 0;
    while let (Some(bits), Some(python)) = (pairs.next(), pairs.next()) {
        let x = f64::from_bits(u64::from_str_radix(bits, 16).unwrap());
        assert_eq!(repr(x), python, "{bits}");
        n += 1;
    }
    assert_eq!(n, 341);
    assert_eq!(repr(f64::NAN), "nan");
    assert_eq!(repr(f64::NEG_INFINITY), "-inf");
}

#[test]
fn float_repr_reads_back_to_the_same_bits() {
    // xorshift64*: any bit pattern, so every exponent and subnormals.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    for _ in 0..200_000 {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let x = f64::from_bits(state.wrapping_mul(0x2545_F491_4F6C_DD1D));
        if !x.is_finite() {
            continue;
        }
        let text = repr(x);
        assert_eq!(
            text.parse::<f64>().unwrap().to_bits(),
            x.to_bits(),
            "{text}"
        );
        // As Python: a '.' or an exponent always (never "1"), exponents signed, 2+ digits.
        match text.split_once('e') {
            Some((_, exponent)) => {
                assert!(
                    exponent.starts_with(['+', '-']) && exponent.len() >= 3,
                    "{text}"
                );
            }
            None => assert!(text.contains('.'), "{text}"),
        }
        let mut json = String::new();
        PyValue::Float(x).write_django_json(&mut json);
        assert_eq!(json, text);
        assert!(
            parse_django_json(&json)
                .unwrap()
                .identical(&PyValue::Float(x))
        );
    }
}

#[test]
fn writes_strings_as_python_ensure_ascii() {
    let value = d(vec![
        ("é", s("😀")),
        ("c", s("\u{0}\u{1f}\u{7f}\u{80}\u{ffff}\u{10ffff} ~")),
        ("q", s("\"\\/\n\r\t\u{8}\u{c}")),
    ]);
    assert_eq!(
        json_of(&value),
        r#"{"\u00e9":"\ud83d\ude00","c":"\u0000\u001f\u007f\u0080\uffff\udbff\udfff ~","q":"\"\\/\n\r\t\b\f"}"#
    );
}

#[test]
fn json_values_convert_both_ways() {
    let json =
        json!({"a": 1, "u": u64::MAX, "f": 0.5, "n": null, "l": [true, "x"], "o": {"z": -1}});
    let Value::Object(map) = &json else {
        unreachable!()
    };
    let value = dict_from_json_map(map);
    assert_eq!(
        value,
        d(vec![
            ("a", PyValue::Int(1)),
            ("u", big("18446744073709551615")),
            ("f", PyValue::Float(0.5)),
            ("n", PyValue::None),
            ("l", PyValue::List(vec![PyValue::Bool(true), s("x")])),
            ("o", d(vec![("z", PyValue::Int(-1))])),
        ])
    );
    assert_eq!(PyValue::from_json(&json), value);
    assert_eq!(value.to_json(), json);
    assert!(value.is_exact_in_json());
    assert_eq!(json_of(&value), serde_json::to_string(&json).unwrap());
}

#[test]
fn to_json_is_lossy_only_where_json_cannot_hold_the_value() {
    let cases = [
        // Python's float(2**70) and float(10**400) (OverflowError: null).
        (
            big("1180591620717411303424"),
            json!(1.1805916207174113e21),
            false,
        ),
        (
            big("-18446744073709551617"),
            json!(-1.8446744073709552e19),
            false,
        ),
        (big(&format!("1{}", "0".repeat(400))), Value::Null, false),
        (PyValue::Float(f64::NAN), Value::Null, false),
        (PyValue::Float(f64::INFINITY), Value::Null, false),
        (PyValue::Float(-0.0), json!(-0.0), true),
        (
            PyValue::List(vec![PyValue::Int(1), PyValue::Float(f64::NEG_INFINITY)]),
            json!([1, null]),
            false,
        ),
        (
            d(vec![("k", d(vec![("b", big("-9223372036854775809"))]))]),
            json!({"k": {"b": -9.223372036854776e18}}),
            false,
        ),
    ];
    for (value, json, exact) in cases {
        assert_eq!(value.to_json(), json, "{value:?}");
        assert_eq!(value.is_exact_in_json(), exact, "{value:?}");
    }
    // Halfway between two floats rounds to even, as Python's float(int): 2**65 + 2**12 to
    // 2**65, 2**65 + 3 * 2**12 to 2**65 + 2**14.
    let even = |digits: &str, bits: f64| {
        assert_eq!(
            big(digits).to_json().as_f64().map(f64::to_bits),
            Some(bits.to_bits())
        );
    };
    even("36893488147419107328", 3.6893488147419103e19);
    even("36893488147419115520", 3.689348814741912e19);
    even("-36893488147419115520", -3.689348814741912e19);
    assert_eq!(big("18446744073709551615").to_json(), json!(u64::MAX));
}

#[test]
fn identical_compares_float_bits() {
    let nan = PyValue::List(vec![PyValue::Float(f64::NAN)]);
    assert_ne!(nan, nan.clone());
    assert!(nan.identical(&nan.clone()));
    assert!(!PyValue::Float(0.0).identical(&PyValue::Float(-0.0)));
    assert!(!d(vec![("a", PyValue::Int(1))]).identical(&d(vec![("b", PyValue::Int(1))])));
}

#[test]
fn repeated_keys_keep_the_first_place_and_the_last_value() {
    // Past INDEX_FROM keys too, where a map finds them.
    let mut text = String::from("{");
    for i in 0..40 {
        text.push_str(&format!("\"k{}\":{i},", i % 20));
    }
    text.push_str("\"k0\":\"last\"}");
    let PyValue::Dict(items) = parse_django_json(&text).unwrap() else {
        panic!("not a dict")
    };
    assert_eq!(items.len(), 20);
    assert_eq!(items[0], ("k0".into(), s("last")));
    assert_eq!(items[19], ("k19".into(), PyValue::Int(39)));
}
